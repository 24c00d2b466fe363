#!/usr/bin/env python
"""Benchmark: count-based baselines next to TIGER, same splits, same metric code.

Usage:
    python scripts/benchmarks/baselines.py --data_dir ../shared/data --dataset amazon-p5/beauty \
        [--tiger_results runs/beauty/results.json ...]

Fits `PopularityRecommender` and `LastItemTransitionRecommender` (hf_tiger.baselines) on the training split,
scores validation and test with hf_tiger.metrics, and prints a Markdown table. Each `--tiger_results` file (the
results.json that scripts/train_tiger.py writes) adds its TIGER row (best validation checkpoint; its validation
figures are those of the selected evaluation). For the P5 Amazon sets the TIGER paper's test figures (Table 2) are
printed as a reference row.

A second table gives the held-out cross-entropy in nats per item: the baselines' `cross_entropy` (add-one
popularity; the transition counts interpolated with it, the interpolation weight chosen on validation) and, for
TIGER, its evaluation loss times its number of semantic-ID levels.

Each `--tiger_models` folder (a saved TIGER model with its tokenizer) is scored here on validation and test with
its constrained beam search (`model.recommend`), and a third table splits Recall@10 of the transition counts and of
each such model by whether the row's (last item -> target) pair occurs in the training rows
(`hf_tiger.baselines.recall_by_seen_transition`). A fourth table scores the same models on a random sample of
`--train_sample` training rows, grouped by how often the row's pair occurs in training
(`hf_tiger.baselines.recall_by_transition_count`): how much of its own training data each model has fitted. On
CPU that takes a few minutes per split for Beauty.

`--neighbours text collaborative` adds `ItemNeighboursRecommender` rows: the items nearest to the history's last
item by their item-text embeddings (the stage-1 encoder, `--encoder_name_or_path`, default the offline MiniLM) and
by collaborative vectors of the training rows (`hf_tiger.data.collaborative_item_embeddings`), with the seen/unseen
split: how much of the next item lies in item similarity alone.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_tiger.baselines import (
    LastItemTransitionRecommender,
    PopularityRecommender,
    evaluate_recommender,
    recall_by_seen_transition,
    recall_by_transition_count,
)
from hf_tiger.data import load_sequences
from hf_tiger.metrics import compute_retrieval_metrics

PAPER_TEST = {  # TIGER paper, Table 2 (test split)
    "amazon-p5/beauty": {"recall@5": 0.0454, "ndcg@5": 0.0321, "recall@10": 0.0648, "ndcg@10": 0.0384},
    "amazon-p5/sports": {"recall@5": 0.0264, "ndcg@5": 0.0181, "recall@10": 0.0400, "ndcg@10": 0.0225},
}
COLUMNS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")


@dataclass
class BaselineArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Root of the shared data (../shared/data)."})
    dataset: str = field(default="amazon-p5/beauty", metadata={"help": "load_sequences name."})
    max_history: int = field(default=20, metadata={"help": "Most recent items kept per history (as TIGER)."})
    tiger_results: list[str] = field(
        default_factory=list,
        metadata={"help": "results.json files of TIGER runs to list beside the baselines."},
    )
    output_file: str | None = field(default=None, metadata={"help": "Also write the rows as JSON here."})
    tiger_models: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Saved TIGER model folders to score here, with the seen/unseen-transition breakdown."
        },
    )
    use_user_tokens: bool = field(
        default=True, metadata={"help": "For --tiger_models: as in their training."}
    )
    num_beams: int | None = field(
        default=None, metadata={"help": "For --tiger_models: beams (default: the model's default_num_beams)."}
    )
    batch_size: int | None = field(
        default=None, metadata={"help": "For --tiger_models: histories per generate."}
    )
    train_sample: int = field(
        default=4000,
        metadata={"help": "For --tiger_models: training rows scored for the fit table (0: none)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the training-row sample."})
    neighbours: list[str] = field(
        default_factory=list,
        metadata={"help": "Nearest-neighbour rows of the last item: text and/or collaborative (see the docstring)."},
    )
    encoder_name_or_path: str | None = field(
        default=None, metadata={"help": "For --neighbours text: the sentence encoder (default: stage 1's default)."}
    )
    collaborative_dim: int = field(default=64, metadata={"help": "For --neighbours collaborative: vector width."})
    collaborative_window: int = field(
        default=3, metadata={"help": "For --neighbours collaborative: largest distance of a counted item pair."}
    )
    interpolations: list[float] = field(
        default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        metadata={
            "help": "Weights of the transition counts tried for the cross-entropy (best on validation)."
        },
    )


def _best_validation(results: dict) -> dict:
    step = (results.get("best_validation") or {}).get("step")
    history = results.get("validation_history") or []
    chosen = [e for e in history if e.get("step") == step] or history[-1:]
    if not chosen:
        return {}
    return {k.removeprefix("eval_"): v for k, v in chosen[-1].items()}


def _tiger_cross_entropy(results: dict, validation: dict) -> dict:
    """TIGER's held-out nats per item: the mean loss per semantic-ID token times the number of levels."""
    levels = ((results.get("config") or {}).get("model") or {}).get("num_levels")
    if not levels:
        return {}
    losses = {"validation": validation.get("loss"), "test": (results.get("test") or {}).get("loss")}
    return {split: loss * levels for split, loss in losses.items() if loss is not None}


def _baseline_cross_entropy(recommender, splits, interpolations: list[float]) -> dict:
    if not isinstance(recommender, LastItemTransitionRecommender):
        return {split: recommender.cross_entropy(splits[split]) for split in ("validation", "test")}
    if not interpolations:
        raise ValueError("--interpolations needs at least one weight")
    scored = {w: recommender.cross_entropy(splits["validation"], interpolation=w) for w in interpolations}
    weight = min(scored, key=scored.get)
    return {
        "validation": scored[weight],
        "test": recommender.cross_entropy(splits["test"], interpolation=weight),
        "interpolation": weight,
    }


def _training_fit(ranked, sample, transitions) -> dict:
    """Recall@10 on training rows the model was fitted on, overall and by the count of the row's pair."""
    overall = recall_by_transition_count(ranked, sample, transitions, k=10, bins=(0,))["0+"]
    return {**overall, "by_count": recall_by_transition_count(ranked, sample, transitions, k=10)}


def _score_tiger_model(path: str, splits, train_sample, transitions, args: BaselineArguments) -> dict:
    from hf_tiger.training.evaluation import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(path)
    row = {"model": f"TIGER ({path}, scored here)", "by_transition": {}}
    parts = {"validation": splits["validation"], "test": splits["test"]}
    if train_sample is not None:
        parts["train"] = train_sample
    for split, data in parts.items():
        ranked = model.recommend(
            data["history"],
            tokenizer,
            user_ids=data["user_id"] if args.use_user_tokens and tokenizer.num_user_buckets else None,
            top_k=10,
            num_beams=args.num_beams,
            batch_size=args.batch_size,
        )
        if split == "train":
            row["training_fit"] = _training_fit(ranked, data, transitions)
            continue
        row[split] = compute_retrieval_metrics(ranked, data["target"], ks=(5, 10))
        row[split]["num_examples"] = len(ranked)
        row["by_transition"][split] = recall_by_seen_transition(ranked, data, transitions, k=10)
    return row


def _neighbour_vectors(kind: str, splits, args: BaselineArguments):
    from hf_tiger.data import collaborative_item_embeddings, default_encoder, embed_items, load_items

    items = load_items(args.dataset, data_dir=args.data_dir)
    item_ids = list(items["item_id"])
    if kind == "text":
        return embed_items(items, args.encoder_name_or_path or default_encoder()), item_ids
    train = splits["train"]
    vectors = collaborative_item_embeddings(
        train["history"], train["target"], item_ids, dim=args.collaborative_dim, window=args.collaborative_window
    )
    return vectors, item_ids


def _neighbour_row(kind: str, splits, transitions, args: BaselineArguments) -> dict:
    from hf_tiger.baselines import ItemNeighboursRecommender

    vectors, item_ids = _neighbour_vectors(kind, splits, args)
    recommender = ItemNeighboursRecommender(vectors, item_ids).fit(splits["train"])
    name = {"text": "last-item text neighbours", "collaborative": "last-item collaborative neighbours"}[kind]
    row = {"model": name, "by_transition": {}}
    for split in ("validation", "test"):
        row[split] = evaluate_recommender(recommender, splits[split])
        ranked = recommender.recommend(splits[split]["history"], k=10)
        row["by_transition"][split] = recall_by_seen_transition(ranked, splits[split], transitions, k=10)
    return row


def run(args: BaselineArguments) -> list[dict]:
    unknown = sorted(set(args.neighbours) - {"text", "collaborative"})
    if unknown:
        raise ValueError(f"--neighbours takes text and/or collaborative, got {unknown}")
    started = time.time()
    splits = load_sequences(args.dataset, data_dir=args.data_dir, max_history=args.max_history)
    rows = []
    for name, recommender in (
        ("most popular", PopularityRecommender()),
        ("last-item transitions", LastItemTransitionRecommender()),
    ):
        recommender.fit(splits["train"])
        rows.append(
            {
                "model": name,
                "validation": evaluate_recommender(recommender, splits["validation"]),
                "test": evaluate_recommender(recommender, splits["test"]),
                "cross_entropy": _baseline_cross_entropy(recommender, splits, args.interpolations),
            }
        )
        if isinstance(recommender, LastItemTransitionRecommender):
            transitions = recommender
            rows[-1]["entropy"] = recommender.conditional_entropy()
            rows[-1]["by_transition"] = {
                split: recall_by_seen_transition(
                    recommender.recommend(splits[split]["history"], k=10), splits[split], recommender, k=10
                )
                for split in ("validation", "test")
            }
    for path in args.tiger_results:
        with open(path, encoding="utf-8") as handle:
            results = json.load(handle)
        validation = _best_validation(results)
        rows.append(
            {
                "model": f"TIGER ({path})",
                "validation": validation,
                "test": results.get("test"),
                "cross_entropy": _tiger_cross_entropy(results, validation),
            }
        )
    train_sample = None
    if args.tiger_models and args.train_sample > 0:
        train = splits["train"]
        picked = random.Random(args.seed).sample(
            range(train.num_rows), min(args.train_sample, train.num_rows)
        )
        train_sample = train.select(sorted(picked))
        ranked = transitions.recommend(train_sample["history"], k=10)
        next(r for r in rows if r["model"] == "last-item transitions")["training_fit"] = _training_fit(
            ranked, train_sample, transitions
        )
    for kind in args.neighbours:
        rows.append(_neighbour_row(kind, splits, transitions, args))
    for path in args.tiger_models:
        rows.append(_score_tiger_model(path, splits, train_sample, transitions, args))
    if args.dataset in PAPER_TEST:
        rows.append({"model": "TIGER paper (Table 2)", "validation": {}, "test": PAPER_TEST[args.dataset]})
    seconds = time.time() - started
    entropy = next(r["entropy"] for r in rows if "entropy" in r)

    def cells(metrics: dict | None) -> str:
        return " | ".join(f"{metrics[c]:.4f}" if metrics and c in metrics else "-" for c in COLUMNS)

    header = " | ".join(COLUMNS)
    print(
        f"\n{args.dataset}: {splits['test'].num_rows} users, {splits['train'].num_rows} training rows ({seconds:.1f} s)"
    )
    print(f"next-item entropy given the last item, training rows (in-sample): {entropy:.3f} nats per item")
    print(f"\n| model | validation {header} | test {header} |")
    print("|---|" + "---|" * (2 * len(COLUMNS)))
    for row in rows:
        print(f"| {row['model']} | {cells(row['validation'])} | {cells(row['test'])} |")
    print("\nHeld-out cross-entropy, nats per item (lower is better)\n")
    print("| model | validation | test |")
    print("|---|---|---|")
    for row in rows:
        ce = row.get("cross_entropy") or {}
        name = row["model"] + (f" (interpolation {ce['interpolation']})" if "interpolation" in ce else "")
        print(
            f"| {name} | "
            + " | ".join(f"{ce[s]:.3f}" if s in ce else "-" for s in ("validation", "test"))
            + " |"
        )
    print("\nRecall@10 by whether the row's (last item -> target) pair occurs in the training rows\n")
    print("| model | split | seen: rows | seen: R@10 | unseen: rows | unseen: R@10 |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        for split, parts in (row.get("by_transition") or {}).items():
            seen, unseen = parts["seen"], parts["unseen"]
            print(
                f"| {row['model']} | {split} | {seen['num_examples']} | {seen['recall@10']:.4f} "
                f"| {unseen['num_examples']} | {unseen['recall@10']:.4f} |"
            )
    fitted = [row for row in rows if "training_fit" in row]
    if fitted:
        groups = list(fitted[0]["training_fit"]["by_count"])
        print(
            f"\nRecall@10 on {train_sample.num_rows} training rows (in-sample), by how often the row's pair occurs "
            "in training (rows in brackets)\n"
        )
        print("| model | all | " + " | ".join(f"pair seen {g}x" for g in groups) + " |")
        print("|---|---|" + "---|" * len(groups))
        for row in fitted:
            fit = row["training_fit"]
            cells = [f"{fit['recall@10']:.3f}"] + [
                f"{part['recall@10']:.3f} ({part['num_examples']})" if part["num_examples"] else "-"
                for part in fit["by_count"].values()
            ]
            print(f"| {row['model']} | " + " | ".join(cells) + " |")
    if args.output_file:
        with open(args.output_file, "w", encoding="utf-8") as handle:
            json.dump({"dataset": args.dataset, "rows": rows}, handle, indent=2)
    return rows


def main(argv=None) -> list[dict]:
    (args,) = HfArgumentParser(BaselineArguments).parse_args_into_dataclasses(args=argv)
    return run(args)


if __name__ == "__main__":
    main()
