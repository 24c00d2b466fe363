#!/usr/bin/env python
"""Every TIGER stage in one command (what `make demo` runs):
item-text embeddings -> RQ-VAE -> semantic-ID tokenizer -> TIGER (checkpoint picked on validation)
-> test metrics (once) -> sample recommendations with item text.

Usage:
    python scripts/run_pipeline.py --dataset ml-100k --data_dir ../shared/data --output_dir runs/demo-ml-100k
    python scripts/run_pipeline.py --dataset amazon-p5/beauty --data_dir ../shared/data --output_dir runs/beauty
    ... [--config my.yaml] [any DataArguments/SemanticIDArguments/TigerModelArguments/TigerTrainingArguments flag]
The default config of a dataset is scripts/configs/tiger_ml100k_small.yaml or tiger_beauty_paper.yaml.
"""

import argparse
import sys
import time

from hf_tiger.training import run_pipeline


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--output_dir", default=None)
    parser.add_argument("--config", default=None, help="YAML/JSON config (default: the dataset's shipped one)")
    known, rest = parser.parse_known_args(argv)
    output_dir = known.output_dir or f"runs/pipeline-{known.dataset.replace('/', '-')}"
    started = time.time()
    results = run_pipeline(known.dataset, known.data_dir, output_dir, config=known.config, args=rest)
    if results.get("hardware", {}).get("world_size", 1) > 1 and "test" not in results:
        return results
    stage1 = results["config"].get("stage1", {})
    print(f"\n=== TIGER on {known.dataset} ===")
    if "semantic_ids" in stage1:
        s = stage1["semantic_ids"]
        print(
            f"semantic IDs: {s['num_items']} items, {s['unique_share']:.1%} unique before the collision level, "
            f"largest collision group {s['largest_collision_group']}"
        )
    print(f"trained {results['train']['epochs']:.2f} epochs; best validation "
          f"{results['best_validation']['metric']} = {results['best_validation']['value']}")
    print(f"test ({results['test']['num_examples']} users):")
    for key in sorted(k for k in results["test"] if "@" in k):
        print(f"  {key:>10s}  {results['test'][key]:.4f}")
    if results.get("baselines"):
        print("for reference, count baselines on the same test rows (hf_tiger.baselines):")
        for name, metrics in results["baselines"].items():
            figures = "  ".join(f"{k} {metrics[k]:.4f}" for k in sorted(k for k in metrics if "@" in k))
            print(f"  {name:>22s}  {figures}")
    print("\nsample recommendations (test users):")
    for sample in results["sample_recommendations"]:
        print(f"user {sample['user_id']}: recent history")
        for item in sample["history"]:
            print(f"    {item['item_id']!s:>8}  {item['text']}")
        print(f"  next (held out): {sample['target']['item_id']}  {sample['target']['text']}")
        for rank, item in enumerate(sample["recommendations"], 1):
            mark = "  <- hit" if item["hit"] else ""
            print(f"  {rank}. {item['item_id']!s:>8}  {item['text']}{mark}")
    timings = ", ".join(f"{k} {v:.0f}s" for k, v in results["timings"].items())
    print(f"\ntimings: {timings}; wall {time.time() - started:.0f}s")
    print(f"results: {output_dir}/results.json; model + tokenizer: {output_dir}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
