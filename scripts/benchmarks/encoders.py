#!/usr/bin/env python
"""Benchmark: item-text encoders compared through the whole model: RQ-VAE code usage, then TIGER's validation quality.

Usage:
    python scripts/benchmarks/encoders.py --dataset amazon-p5/beauty --data_dir ../shared/data \
        --config scripts/configs/tiger_beauty_cpu.yaml --recipe_file scripts/configs/curves_beauty.yaml \
        --recipe adopted --budget_examples 120000 --max_eval_samples 2000 --output_dir runs/encoders-beauty \
        --encoders all-MiniLM-L6-v2 all-mpnet-base-v2 [--reuse all-MiniLM-L6-v2=runs/curves-beauty]

For every encoder (an offline preset of `hf_tiger.data.ENCODER_PRESETS`, a Hub id or a folder), stage 1 is built
with the base config (item text -> embeddings -> RQ-VAE -> semantic IDs) and one recipe is trained on it at the
same budget by `learning_curve.py` (`OUTPUT_DIR/<encoder>/curves.json`; an existing one with the same settings is
reused, and `--reuse ENCODER=CURVE_DIR` takes the recipe from an earlier learning-curve run instead). The table
shows, per encoder: embedding width (plus the collaborative vectors' when the base
config appends them), codes used per RQ-VAE level, the share of items whose codes are unique before
the collision level, the largest collision group, and validation Recall@10 / NDCG@10 (all, seen, unseen rows) with
examples seen and training seconds, beside the count baselines on the same rows.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parent))
import learning_curve  # noqa: E402

from hf_tiger import RQVAEConfig, SemanticIDTokenizer  # noqa: E402
from hf_tiger.training import load_config_file  # noqa: E402


@dataclass
class EncoderArguments:
    dataset: str = field(default="amazon-p5/beauty", metadata={"help": "load_sequences name."})
    data_dir: str | None = field(default=None, metadata={"help": "Root of the shared data (../shared/data)."})
    output_dir: str = field(default="runs/encoders", metadata={"help": "One folder per encoder."})
    config: str | None = field(default=None, metadata={"help": "Base config (default: the dataset's shipped one)."})
    encoders: list[str] = field(
        default_factory=lambda: ["all-MiniLM-L6-v2", "all-mpnet-base-v2"],
        metadata={"help": "Encoder presets, Hub ids or folders."},
    )
    reuse: list[str] = field(
        default_factory=list, metadata={"help": "ENCODER=CURVE_DIR: take the recipe from an earlier curves.json."}
    )
    recipe: str = field(default="adopted", metadata={"help": "The recipe trained on every encoder's stage 1."})
    recipe_file: str | None = field(default=None, metadata={"help": "YAML/JSON: recipe name -> overrides."})
    budget_examples: int = field(default=120_000, metadata={"help": "Training examples per encoder."})
    num_points: int = field(default=4, metadata={"help": "Evaluation points over the budget."})
    max_eval_samples: int | None = field(default=2000, metadata={"help": "Validation rows scored (fixed sample)."})
    train_sample_size: int = field(default=1000, metadata={"help": "Training rows scored in-sample."})
    num_beams: int = field(default=20, metadata={"help": "Beams of the constrained search."})
    seed: int = field(default=42, metadata={"help": "Seed of stage 1, the samples and training."})


def code_usage(tokenizer: SemanticIDTokenizer) -> dict[str, Any]:
    """Codes used per RQ-VAE level, unique share before the collision level, largest collision group."""
    codes = [tokenizer.semantic_id(item)[:-1] for item in tokenizer.item_ids]  # the collision level is last
    levels = len(codes[0])
    groups = Counter(codes)
    return {
        "num_items": len(codes),
        "codes_used": [len({c[level] for c in codes}) for level in range(levels)],
        "unique_share": sum(1 for size in groups.values() if size == 1) / len(codes),
        "largest_collision_group": max(groups.values()),
    }


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[-60:]


def run_encoder(encoder: str, args: EncoderArguments, reused: dict[str, str]) -> dict[str, Any]:
    if encoder in reused:
        curves = json.loads((Path(reused[encoder]) / "curves.json").read_text(encoding="utf-8"))
        given = curves["arguments"]["tokenizer_name_or_path"]
        tokenizer_dir = given or str(Path(reused[encoder]) / "stage1" / "tokenizer")
        budget = curves["arguments"]["budget_examples"]
        if budget != args.budget_examples:
            raise ValueError(f"{reused[encoder]} was trained for {budget} examples, not {args.budget_examples}")
    else:
        folder = Path(args.output_dir) / _slug(encoder)
        folder.mkdir(parents=True, exist_ok=True)
        base = load_config_file(args.config) if args.config else {}
        config = folder / "config.yaml"
        config.write_text(yaml.safe_dump({**base, "encoder_name_or_path": encoder}, sort_keys=False))
        curve_args = [
            *("--dataset", args.dataset, "--output_dir", str(folder), "--config", str(config)),
            *("--recipes", args.recipe, "--budget_examples", str(args.budget_examples)),
            *("--num_points", str(args.num_points), "--train_sample_size", str(args.train_sample_size)),
            *("--num_beams", str(args.num_beams), "--seed", str(args.seed)),
        ]
        if args.data_dir:
            curve_args += ["--data_dir", args.data_dir]
        if args.max_eval_samples:
            curve_args += ["--max_eval_samples", str(args.max_eval_samples)]
        if args.recipe_file:
            curve_args += ["--recipe_file", args.recipe_file]
        learning_curve.main(curve_args)
        curves = json.loads((folder / "curves.json").read_text(encoding="utf-8"))
        tokenizer_dir = str(folder / "stage1" / "tokenizer")
    recipe = next((r for r in curves["recipes"] if r["recipe"] == args.recipe), None)
    if recipe is None:
        raise ValueError(f"the curves of {encoder} hold no recipe {args.recipe!r}")
    rqvae_config = RQVAEConfig.from_pretrained(Path(tokenizer_dir).parent / "rqvae")
    return {
        "encoder": encoder,
        "embedding_dim": rqvae_config.text_dim,
        "collaborative_dim": rqvae_config.collaborative_dim,  # appended to the text embeddings, not the encoder's
        "codes": code_usage(SemanticIDTokenizer.from_pretrained(tokenizer_dir)),
        "final": recipe["points"][-1],
        "validation_rows": curves["validation_rows"],
        "baselines": curves["baselines"],
        "machine": curves["machine"],
    }


def width(row: dict[str, Any]) -> str:
    """The encoder's width, plus the collaborative vectors' when the base config appends them."""
    collaborative = row["collaborative_dim"]
    return f"{row['embedding_dim']} + {collaborative} collab." if collaborative else str(row["embedding_dim"])


def print_table(rows: list[dict[str, Any]]) -> None:
    first = rows[0]
    print(f"\nEncoders through RQ-VAE and TIGER (validation, {first['validation_rows']} rows)")
    print(f"machine: {first['machine']['cpu']}, {first['machine']['threads']} threads")
    print(
        "| encoder | width | codes used per level | unique before collision level | largest group | examples "
        "| train s | val R@10 | val N@10 | seen R@10 | unseen R@10 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        codes, final, v = row["codes"], row["final"], row["final"]["validation"]
        print(
            f"| {row['encoder']} | {width(row)} | {' / '.join(map(str, codes['codes_used']))} "
            f"| {codes['unique_share']:.1%} "
            f"| {codes['largest_collision_group']} | {final['examples_seen']:,} | {final['train_seconds']:.0f} "
            f"| {v['recall@10']:.4f} | {v['ndcg@10']:.4f} | {v['seen_recall@10']:.4f} "
            f"| {v['unseen_recall@10']:.4f} |"
        )
    for baseline in rows[0]["baselines"]:
        v = baseline["validation"]
        print(f"| {baseline['name']} | - | - | - | - | - | - | {v['recall@10']:.4f} | {v['ndcg@10']:.4f} "
              f"| {v['seen_recall@10']:.4f} | {v['unseen_recall@10']:.4f} |")


def main(argv=None) -> list[dict[str, Any]]:
    (args,) = HfArgumentParser(EncoderArguments).parse_args_into_dataclasses(args=argv)
    reused = {}
    for item in args.reuse:
        name, sep, folder = item.partition("=")
        if not sep:
            raise ValueError(f"--reuse takes ENCODER=CURVE_DIR, got {item!r}")
        reused[name] = folder
    rows = [run_encoder(encoder, args, reused) for encoder in args.encoders]
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.output_dir) / "encoders.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print_table(rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
