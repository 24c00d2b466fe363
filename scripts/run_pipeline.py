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
    columns = {
        "recall@5": "R@5",
        "recall@10": "R@10",
        "ndcg@5": "N@5",
        "ndcg@10": "N@10",
        "mrr@10": "MRR@10",
        "seen_recall@10": "seen R@10",
        "unseen_recall@10": "unseen R@10",
        "coverage@10": "coverage@10",
        "popularity_percentile@10": "pop. pct@10",
    }
    test = results["test"]
    print(
        f"test ({test['num_examples']} users; 'seen' = the last-item -> target pair occurs in training: "
        f"{test.get('seen_num_examples', '?')} rows, unseen {test.get('unseen_num_examples', '?')}):"
    )
    print(f"  {'':>22s}  " + "  ".join(f"{c:>11s}" for c in columns.values()))
    rows = [("TIGER", test)]
    fusion = results.get("prior_fusion")
    if fusion:
        rows.append((f"TIGER + counts (w={fusion['weight']:g})", fusion["test"]))
    rows += [(name.replace("_", " "), metrics) for name, metrics in results.get("baselines", {}).items()]
    for name, metrics in rows:
        print(f"  {name:>22s}  " + "  ".join(f"{metrics.get(c, float('nan')):>11.4f}" for c in columns))
    if results.get("baselines"):
        print("  (count baselines: hf_tiger.baselines, fitted on the training split, scored on the same test rows)")
    if fusion:
        chosen = ", ".join(f"w={float(w):g}: {value:.4f}" for w, value in fusion["validation"].items())
        print(
            "  (TIGER + counts: the training transition counts fused into TIGER's beam search, "
            f"hf_tiger.TransitionPrior; weight chosen on {fusion['selected_on']}: {chosen})"
        )
    print(
        "  (coverage@10: share of the catalogue recommended to someone; pop. pct@10: mean training-popularity "
        "percentile of the recommended items, 1 = most popular)"
    )
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
