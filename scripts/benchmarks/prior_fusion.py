#!/usr/bin/env python
"""Benchmark: a saved TIGER model with the training transition counts fused into its beam search.

Usage:
    python scripts/benchmarks/prior_fusion.py --model_name_or_path runs/beauty-cpu-itememb \
        --dataset amazon-p5/beauty --data_dir ../shared/data --split validation \
        [--weights 0 0.25 0.5 1] [--backoffs 1] [--max_samples 5000] [--output_file fusion.json]

TIGER recovers only part of the item-to-item transitions of its training rows, which last-item counts memorise
exactly; on the rows whose transition never occurs in training it is the better model. `hf_tiger.TransitionPrior`
ranks items by ``log p_TIGER(item | history) + weight * log P_counts(item | last item)`` inside the constrained
beam search. This script scores one split for every (weight, backoff), beside most-popular and the transition
counts on the same rows, with the same metric code (`hf_tiger.metrics.compute_recommendation_metrics`), and prints
a Markdown table. Choose weight and backoff on validation; score test once, with the chosen pair only.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_tiger import TransitionPrior
from hf_tiger.baselines import (
    LastItemTransitionRecommender,
    PopularityRecommender,
    evaluate_recommender,
    seen_transitions,
)
from hf_tiger.data import load_sequences
from hf_tiger.machine import cpu_description
from hf_tiger.metrics import compute_recommendation_metrics
from hf_tiger.training import write_json
from hf_tiger.training.evaluation import load_model_and_tokenizer, trained_with_user_tokens

COLUMNS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10", "seen_recall@10", "unseen_recall@10")


@dataclass
class FusionArguments:
    model_name_or_path: str = field(metadata={"help": "A saved TIGER model folder (with its tokenizer)."})
    dataset: str = field(default="amazon-p5/beauty", metadata={"help": "load_sequences name."})
    data_dir: str | None = field(default=None, metadata={"help": "Root of the shared data (../shared/data)."})
    split: str = field(default="validation", metadata={"help": "validation (choose here) or test (once)."})
    weights: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0], metadata={"help": "Prior weights."})
    backoffs: list[float] = field(default_factory=lambda: [1.0], metadata={"help": "Popularity pseudo-counts."})
    backgrounds: list[str] = field(
        default_factory=lambda: ["popularity"], metadata={"help": "What the counts back off to: popularity, uniform."}
    )
    num_beams: int = field(default=20, metadata={"help": "Beams of the constrained search."})
    batch_size: int = field(default=64, metadata={"help": "Histories per generate() call."})
    max_samples: int | None = field(
        default=None, metadata={"help": "A seeded random sample of this many rows (default: the whole split)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the row sample."})
    use_user_tokens: bool | None = field(
        default=None, metadata={"help": "As in training (default: as recorded in the run's results.json, else yes)."}
    )
    output_file: str | None = field(default=None, metadata={"help": "Also write the figures as JSON here."})

    def __post_init__(self):
        if not self.weights or any(w < 0 for w in self.weights):
            raise ValueError(f"weights must be a non-empty list of numbers >= 0, got {self.weights}")
        if not self.backgrounds or set(self.backgrounds) - {"popularity", "uniform"}:
            raise ValueError(f"backgrounds must be popularity and/or uniform, got {self.backgrounds}")
        if not self.backoffs or any(b <= 0 for b in self.backoffs):
            raise ValueError(f"backoffs must be a non-empty list of numbers > 0, got {self.backoffs}")


def _rows(split, size: int | None, seed: int):
    if size is None or size >= split.num_rows:
        return split
    return split.select(sorted(random.Random(seed).sample(range(split.num_rows), size)))


def fusion_table(args: FusionArguments, model=None, tokenizer=None, splits=None) -> dict:
    """Scores every (weight, backoff) and the two baselines on the same rows; returns the figures."""
    if model is None:
        model, tokenizer = load_model_and_tokenizer(args.model_name_or_path)
    if splits is None:
        splits = load_sequences(args.dataset, data_dir=args.data_dir, max_history=tokenizer.max_history)
    if args.split not in splits:
        raise ValueError(f"unknown split {args.split!r}; the dataset has {list(splits)}")
    use_user_tokens = args.use_user_tokens
    if use_user_tokens is None:
        recorded = trained_with_user_tokens(args.model_name_or_path)
        use_user_tokens = True if recorded is None else recorded
    rows = _rows(splits[args.split], args.max_samples, args.seed)
    counts = LastItemTransitionRecommender().fit(splits["train"])
    seen = seen_transitions(rows, counts)
    histories, targets = list(rows["history"]), list(rows["target"])
    user_ids = list(rows["user_id"]) if use_user_tokens and tokenizer.num_user_buckets else None

    results = []
    for name, baseline in (("most popular", PopularityRecommender().fit(splits["train"])), ("transition counts", counts)):
        metrics = evaluate_recommender(baseline, rows, ks=(5, 10), transitions=counts)
        results.append({"name": name, "weight": None, "backoff": None, "background": None, "seconds": None, "metrics": metrics})
    settings = [(0.0, None, None)] if 0.0 in args.weights else []
    settings += [(w, b, g) for w in args.weights if w > 0 for b in args.backoffs for g in args.backgrounds]
    tables = {g: TransitionPrior.from_recommender(counts, tokenizer, background=g) for g in args.backgrounds}
    for weight, backoff, background in settings:
        prior = None if weight == 0 else tables[background].with_settings(weight=weight, backoff=backoff)
        started = time.perf_counter()
        ranked = model.recommend(
            histories,
            tokenizer,
            user_ids=user_ids,
            top_k=10,
            num_beams=args.num_beams,
            batch_size=args.batch_size,
            item_prior=prior,
        )
        seconds = time.perf_counter() - started
        metrics = compute_recommendation_metrics(ranked, targets, ks=(5, 10), seen=seen)
        name = "TIGER"
        if prior is not None:
            name = f"TIGER + counts (w={weight:g}, b={backoff:g}" + (", uniform)" if background == "uniform" else ")")
        results.append(
            {
                "name": name,
                "weight": weight,
                "backoff": backoff,
                "background": background,
                "seconds": seconds,
                "metrics": metrics,
            }
        )
    return {
        "model": str(args.model_name_or_path),
        "dataset": args.dataset,
        "split": args.split,
        "num_rows": rows.num_rows,
        "num_seen_rows": int(sum(seen)),
        "num_beams": args.num_beams,
        "cpu": "{} ({})".format(*cpu_description()),
        "results": results,
    }


def print_table(report: dict) -> None:
    print(
        f"{report['dataset']} {report['split']}, {report['num_rows']} rows ({report['num_seen_rows']} with a "
        f"transition seen in training), {report['num_beams']} beams; {report['cpu']}"
    )
    print("| model | " + " | ".join(COLUMNS) + " | decode s |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for row in report["results"]:
        figures = " | ".join(f"{row['metrics'][c]:.4f}" for c in COLUMNS)
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.0f}"
        print(f"| {row['name']} | {figures} | {seconds} |")


def main(argv=None) -> dict:
    (args,) = HfArgumentParser(FusionArguments).parse_args_into_dataclasses(args=argv)
    report = fusion_table(args)
    print_table(report)
    if args.output_file:
        write_json(args.output_file, report)
    return report


if __name__ == "__main__":
    main()
