#!/usr/bin/env python
"""Benchmark: learning curves of TIGER training recipes at an equal budget, beside the count baselines.

Usage:
    python scripts/benchmarks/learning_curve.py --dataset ml-100k --data_dir ../shared/data \
        --budget_examples 200000 --output_dir runs/curves-ml100k
    python scripts/benchmarks/learning_curve.py --dataset amazon-p5/beauty --data_dir ../shared/data \
        --tokenizer_name_or_path runs/beauty/tokenizer --budget_examples 1000000 --max_eval_samples 4000 \
        --recipes no_user_tokens small_batch --output_dir runs/curves-beauty

Every recipe starts from the dataset's shipped config (`scripts/configs/`, or `--config`) with its overrides
(the `RECIPES` below, or `--recipe_file` YAML: `name: {argument: value, ...}`), trains for the same number of
training examples (`--budget_examples`, so each recipe's cosine schedule ends with the budget) and is scored at
`--num_points` evenly spaced points on:
- validation rows (all, or a fixed random `--max_eval_samples`): Recall@10 / NDCG@10 from constrained beam search
  (`--num_beams`, 20 by default), and Recall@10 on the rows whose (last item -> target) pair occurs in training
  ("seen") and on the rest ("unseen");
- a fixed random sample of the rows it trains on (`--train_sample_size`): in-sample Recall@10.
Examples seen and training seconds (evaluation excluded) are printed for every point, and most-popular and
last-item transition counts are scored on the same rows. Test is never read: recipes are compared on validation.
Stage 1 (embeddings -> RQ-VAE -> tokenizer) is built once into `OUTPUT_DIR/stage1` unless a tokenizer is given.
`OUTPUT_DIR/curves.json` is written after every recipe; a re-run with the same settings reuses the recipes it holds
(same overrides) and trains only the others (a folder whose curves.json has other settings is refused, not
overwritten).
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import HfArgumentParser, TrainerCallback, set_seed

from hf_tiger.baselines import LastItemTransitionRecommender, PopularityRecommender, recall_by_seen_transition
from hf_tiger.data import load_items, load_sequences
from hf_tiger.machine import cpu_description
from hf_tiger.metrics import compute_retrieval_metrics
from hf_tiger.training import build_tiger_model, find_rqvae, prepare_tokenizer, train_tiger
from hf_tiger.training.data import user_sequence_windows
from hf_tiger.training.pipeline import pipeline_arguments
from hf_tiger.training.train import most_recent_prefixes, write_json

# Recipe name -> overrides of the dataset's shipped config (any DataArguments / TigerModelArguments /
# TigerTrainingArguments field). Every recipe sets the four settings the recipes vary, so a recipe means the same
# whatever the shipped config holds today. "former_demo" is the ML-100K demo config before these curves (user
# tokens, batch 256, peak LR 2e-3, T5's attention dropout); each of the others changes one thing from the
# recipe it names.
_SMALL_BATCH = {
    "use_user_tokens": False,
    "per_device_train_batch_size": 64,
    "learning_rate": 1e-3,
    "attention_dropout_rate": None,
}
RECIPES: dict[str, dict[str, Any]] = {
    "former_demo": {
        "use_user_tokens": True,
        "per_device_train_batch_size": 256,
        "learning_rate": 2e-3,
        "attention_dropout_rate": None,
    },
    # former_demo without user tokens
    "no_user_tokens": {
        "use_user_tokens": False,
        "per_device_train_batch_size": 256,
        "learning_rate": 2e-3,
        "attention_dropout_rate": None,
    },
    # no_user_tokens with 4x the updates for the same examples
    "small_batch": dict(_SMALL_BATCH),
    # small_batch plus one change each
    "rqvae_init": {**_SMALL_BATCH, "embedding_init": "rqvae"},
    "label_smoothing": {**_SMALL_BATCH, "label_smoothing_factor": 0.1},
    "no_attention_dropout": {**_SMALL_BATCH, "attention_dropout_rate": 0.0},
    "all_prefixes": {**_SMALL_BATCH, "max_train_prefixes_per_user": None},
    # no_attention_dropout plus every training row cut to its last item (DataArguments.last_item_rows)
    "last_item_rows": {**_SMALL_BATCH, "attention_dropout_rate": 0.0, "last_item_rows": True},
    # no_attention_dropout with a causal encoder, trained on user sequences: one encoder pass per window of up to
    # 21 items serves all its targets (DataArguments.user_sequences); 8 windows (about 80 rows) per step
    "user_sequences": {
        **_SMALL_BATCH,
        "attention_dropout_rate": 0.0,
        "causal_encoder": True,
        "user_sequences": True,
        "per_device_train_batch_size": 8,
    },
    # user_sequences over all of a user's training rows (5x the distinct rows), each window still <= 21 items
    "user_sequences_all_prefixes": {
        **_SMALL_BATCH,
        "attention_dropout_rate": 0.0,
        "causal_encoder": True,
        "user_sequences": True,
        "per_device_train_batch_size": 8,
        "max_train_prefixes_per_user": None,
    },
    # no_attention_dropout plus a learned vector per item on its semantic-ID tokens, x10 (the Beauty CPU recipe's)
    "item_embeddings_x10": {
        **_SMALL_BATCH,
        "attention_dropout_rate": 0.0,
        "item_embeddings": True,
        "item_embedding_scale": 10.0,
    },
    "no_dropout": {**_SMALL_BATCH, "dropout_rate": 0.0},
    "high_lr": {**_SMALL_BATCH, "learning_rate": 3e-3},
    # the adopted demo recipe (no_attention_dropout) in bf16 mixed precision: must learn as fp32 does
    "bf16": {**_SMALL_BATCH, "attention_dropout_rate": 0.0, "bf16": True},
}


@dataclass
class CurveArguments:
    dataset: str = field(default="ml-100k", metadata={"help": "load_sequences name."})
    data_dir: str | None = field(default=None, metadata={"help": "Root of the shared data (../shared/data)."})
    output_dir: str = field(default="runs/learning-curve", metadata={"help": "Runs, stage 1 and curves.json."})
    config: str | None = field(default=None, metadata={"help": "Base config (default: the dataset's shipped one)."})
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved tokenizer (with its 'rqvae' folder beside it for rqvae_init)."}
    )
    recipes: list[str] = field(
        default_factory=lambda: [
            "former_demo",
            "no_user_tokens",
            "small_batch",
            "rqvae_init",
            "label_smoothing",
            "no_attention_dropout",
            "all_prefixes",
        ],
        metadata={"help": f"Recipes to train, from {sorted(RECIPES)} or --recipe_file."},
    )
    recipe_file: str | None = field(default=None, metadata={"help": "YAML/JSON: recipe name -> overrides."})
    stage1_overrides: list[str] = field(
        default_factory=list,
        metadata={
            "help": "KEY=VALUE stage-1 settings of the built stage 1 (e.g. rqvae_standardize_inputs=true); every "
            "recipe of the run then trains on those semantic IDs."
        },
    )
    budget_examples: int = field(default=200_000, metadata={"help": "Training examples per recipe."})
    num_points: int = field(default=4, metadata={"help": "Evaluation points, evenly spaced over the budget."})
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Score a fixed random sample of this many validation rows (default all)."}
    )
    train_sample_size: int = field(default=1000, metadata={"help": "Training rows scored in-sample."})
    num_beams: int = field(default=20, metadata={"help": "Beams of the constrained search."})
    seed: int = field(default=42, metadata={"help": "Seed of the samples and of every recipe."})
    num_user_buckets: int = field(
        default=2000, metadata={"help": "User tokens of the stage-1 tokenizer (recipes with user tokens use them)."}
    )

    def __post_init__(self):
        for name in ("budget_examples", "num_points", "train_sample_size", "num_beams"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_eval_samples is not None and self.max_eval_samples < 1:
            raise ValueError(f"max_eval_samples must be >= 1 or unset, got {self.max_eval_samples}")


def _sample(split, size: int | None, seed: int):
    if size is None or size >= split.num_rows:
        return split
    return split.select(sorted(random.Random(seed).sample(range(split.num_rows), size)))


def score_rows(ranked, rows, transitions) -> dict[str, float]:
    """Recall/NDCG@10 of ranked item lists on `rows`, with Recall@10 on seen / unseen transitions."""
    metrics = compute_retrieval_metrics(ranked, rows["target"], ks=(10,))
    by_transition = recall_by_seen_transition(ranked, rows, transitions, k=10)
    return {
        "recall@10": metrics["recall@10"],
        "ndcg@10": metrics["ndcg@10"],
        "seen_recall@10": by_transition["seen"]["recall@10"],
        "unseen_recall@10": by_transition["unseen"]["recall@10"],
    }


class CurvePoints(TrainerCallback):
    """Scores the model at fixed steps; the time spent scoring is kept out of the training seconds."""

    def __init__(self, steps, tokenizer, validation, train_sample, transitions, use_user_tokens, num_beams, batch):
        self.steps = set(steps)
        self.tokenizer = tokenizer
        self.validation = validation
        self.train_sample = train_sample
        self.transitions = transitions
        self.use_user_tokens = use_user_tokens
        self.num_beams = num_beams
        self.batch = batch
        self.points: list[dict[str, Any]] = []
        self.paused = 0.0
        self.started = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def _rank(self, model, rows):
        user_ids = list(rows["user_id"]) if self.use_user_tokens and self.tokenizer.num_user_buckets else None
        histories = list(rows["history"])
        return model.recommend(histories, self.tokenizer, user_ids=user_ids, top_k=10, num_beams=self.num_beams)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step not in self.steps:
            return control
        train_seconds = time.perf_counter() - self.started - self.paused
        paused_at = time.perf_counter()
        validation = score_rows(self._rank(model, self.validation), self.validation, self.transitions)
        fitted = compute_retrieval_metrics(self._rank(model, self.train_sample), self.train_sample["target"], ks=(10,))
        self.points.append(
            {
                "step": state.global_step,
                "examples_seen": round(state.global_step * self.batch),
                "train_seconds": train_seconds,
                "validation": validation,
                "train_sample_recall@10": fitted["recall@10"],
            }
        )
        model.train()
        self.paused += time.perf_counter() - paused_at
        return control


def load_recipes(args: CurveArguments) -> dict[str, dict[str, Any]]:
    recipes = dict(RECIPES)
    if args.recipe_file:
        from hf_tiger.training import load_config_file

        for name, overrides in load_config_file(args.recipe_file).items():
            if not isinstance(overrides, dict):
                raise ValueError(f"recipe {name!r} in {args.recipe_file} must map argument names to values")
            recipes[name] = overrides
    unknown = [name for name in args.recipes if name not in recipes]
    if unknown:
        raise ValueError(f"unknown recipes {unknown}; known: {sorted(recipes)}")
    return recipes


def run_recipe(name, overrides, args: CurveArguments, splits, tokenizer, stage1_dir, transitions, validation):
    output_dir = Path(args.output_dir) / name
    data_args, semantic_args, model_args, training_args = pipeline_arguments(
        args.dataset,
        args.data_dir,
        str(output_dir),
        config=args.config,
        **{
            **overrides,
            "seed": args.seed,
            "max_train_seconds": None,
            "eval_strategy": "no",
            "save_strategy": "no",
            "load_best_model_at_end": False,
            "report_to": "none",
            "disable_tqdm": True,
            "logging_steps": 10**9,
        },
    )
    batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    train_rows = most_recent_prefixes(splits["train"], data_args.max_train_prefixes_per_user)
    # a batch of user-sequence windows holds all their targets: examples (rows) per step = windows x mean targets
    examples_per_step = float(batch)
    if data_args.user_sequences:
        windows = user_sequence_windows(train_rows, tokenizer.max_history)
        examples_per_step = batch * train_rows.num_rows / windows.num_rows
    steps = max(1, round(args.budget_examples / examples_per_step))
    training_args.max_steps = steps
    training_args.num_train_epochs = 1.0
    points = sorted({max(1, round(steps * (i + 1) / args.num_points)) for i in range(args.num_points)})
    callback = CurvePoints(
        points,
        tokenizer,
        validation,
        _sample(train_rows, args.train_sample_size, args.seed),
        transitions,
        data_args.use_user_tokens,
        args.num_beams,
        examples_per_step,
    )
    set_seed(args.seed)
    rqvae = find_rqvae(semantic_args, dataclasses.replace(model_args, tokenizer_name_or_path=str(stage1_dir)))
    model = build_tiger_model(tokenizer, model_args, rqvae=rqvae if model_args.embedding_init == "rqvae" else None)
    started = time.perf_counter()
    train_tiger(model, tokenizer, splits, training_args, data_args, callbacks=[callback], evaluate_test=False)
    return {
        "recipe": name,
        "overrides": overrides,
        "batch_size": batch,
        "examples_per_step": examples_per_step,
        "steps": steps,
        "train_rows": train_rows.num_rows,
        "wall_seconds": time.perf_counter() - started,
        "parameters": sum(p.numel() for p in model.parameters()),
        "points": callback.points,
    }


def baseline_rows(splits, validation, train_sample_size, seed, max_prefixes) -> list[dict[str, Any]]:
    """Most popular and last-item transitions (fitted on the training split) on the rows the recipes are scored on."""
    fitted_sample = _sample(most_recent_prefixes(splits["train"], max_prefixes), train_sample_size, seed)
    transitions = LastItemTransitionRecommender().fit(splits["train"])
    rows = []
    for name, recommender in (
        ("most popular", PopularityRecommender().fit(splits["train"])),
        ("last-item transitions", transitions),
    ):
        fitted = recommender.recommend(fitted_sample["history"], k=10)
        rows.append(
            {
                "name": name,
                "validation": score_rows(recommender.recommend(validation["history"], k=10), validation, transitions),
                "train_sample_recall@10": compute_retrieval_metrics(fitted, fitted_sample["target"], ks=(10,))[
                    "recall@10"
                ],
            }
        )
    return rows


def print_table(args: CurveArguments, results: list[dict], baselines: list[dict], validation_rows: int) -> None:
    print(
        f"\nLearning curves on {args.dataset}: {validation_rows} validation rows, {args.num_beams} beams, "
        f"budget {args.budget_examples:,} training examples; {cpu_description()[0]}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}\n"
    )
    print("| recipe | examples seen | train s | val R@10 | val N@10 | val R@10 seen | val R@10 unseen | train R@10 |")
    print("|---|---|---|---|---|---|---|---|")
    for row in baselines:
        v = row["validation"]
        print(
            f"| {row['name']} | - | - | {v['recall@10']:.4f} | {v['ndcg@10']:.4f} | {v['seen_recall@10']:.4f} | "
            f"{v['unseen_recall@10']:.4f} | {row['train_sample_recall@10']:.4f} |"
        )
    for result in results:
        for point in result["points"]:
            v = point["validation"]
            print(
                f"| {result['recipe']} | {point['examples_seen']:,} | {point['train_seconds']:.0f} | "
                f"{v['recall@10']:.4f} | {v['ndcg@10']:.4f} | {v['seen_recall@10']:.4f} | "
                f"{v['unseen_recall@10']:.4f} | {point['train_sample_recall@10']:.4f} |"
            )


def _stage1_args(overrides: list[str]) -> list[str]:
    """`KEY=VALUE` pairs as command-line flags of the pipeline's argument groups."""
    flags = []
    for pair in overrides:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--stage1_overrides takes KEY=VALUE pairs, got {pair!r}")
        flags += [f"--{key}", value]
    return flags


def run(args: CurveArguments) -> dict[str, Any]:
    recipes = load_recipes(args)
    output_dir = Path(args.output_dir)
    path = output_dir / "curves.json"
    done = _finished_recipes(path, args)  # before any work: a folder of other settings is an error
    splits = load_sequences(args.dataset, data_dir=args.data_dir)
    stage1_dir = Path(args.tokenizer_name_or_path) if args.tokenizer_name_or_path else output_dir / "stage1" / "tokenizer"
    if args.tokenizer_name_or_path is None and not (stage1_dir / "tokenizer_config.json").is_file():
        data_args, semantic_args, model_args, training_args = pipeline_arguments(
            args.dataset,
            args.data_dir,
            str(output_dir / "stage1"),
            config=args.config,
            args=_stage1_args(args.stage1_overrides),
            seed=args.seed,
            num_user_buckets=args.num_user_buckets,
        )
        prepare_tokenizer(model_args, semantic_args, data_args, training_args, items=load_items(args.dataset,
                                                                                                 data_dir=args.data_dir))
    from hf_tiger import SemanticIDTokenizer

    tokenizer = SemanticIDTokenizer.from_pretrained(str(stage1_dir))
    validation = _sample(splits["validation"], args.max_eval_samples, args.seed)
    transitions = LastItemTransitionRecommender().fit(splits["train"])
    base_data_args = pipeline_arguments(args.dataset, args.data_dir, str(output_dir), config=args.config)[0]
    baselines = baseline_rows(
        splits, validation, args.train_sample_size, args.seed, base_data_args.max_train_prefixes_per_user
    )
    payload = {
        "dataset": args.dataset,
        "arguments": dataclasses.asdict(args),
        "machine": {"cpu": cpu_description()[0], "threads": torch.get_num_threads(), "torch": torch.__version__},
        "validation_rows": validation.num_rows,
        "baselines": baselines,
        "recipes": [],
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    kept = [recipe for name, recipe in done.items() if name not in args.recipes]  # earlier recipes stay on file
    for name in args.recipes:
        if name in done and done[name]["overrides"] == recipes[name]:
            print(f"{name}: finished in an earlier run of {path}, reused")
            payload["recipes"].append(done[name])
        else:
            payload["recipes"].append(
                run_recipe(name, recipes[name], args, splits, tokenizer, stage1_dir, transitions, validation)
            )
        # written after every recipe: a stopped run keeps what it finished, and a re-run goes on from there
        write_json(path, {**payload, "recipes": payload["recipes"] + kept})
        print_table(args, payload["recipes"], baselines, validation.num_rows)
    return payload


# Settings that must match for a recipe finished by an earlier run to be reused.
_SAME_RUN = ("dataset", "config", "tokenizer_name_or_path", "budget_examples", "num_points", "max_eval_samples",
             "train_sample_size", "num_beams", "seed", "num_user_buckets", "stage1_overrides")
# their values in curves.json files written before the setting existed
_ADDED_LATER = {"stage1_overrides": []}


def _finished_recipes(path: Path, args: CurveArguments) -> dict[str, dict[str, Any]]:
    """Recipes already in `curves.json` from an earlier run with the same settings (else none)."""
    if not path.is_file():
        return {}
    previous = json.loads(path.read_text(encoding="utf-8"))
    before = previous.get("arguments", {})
    changed = [key for key in _SAME_RUN if before.get(key, _ADDED_LATER.get(key)) != getattr(args, key)]
    if changed:
        # overwriting it would lose every recipe it holds
        raise ValueError(
            f"{path} holds learning curves of other settings ({', '.join(changed)}): pass another --output_dir "
            "(or move the file) so its recipes are not overwritten"
        )
    return {recipe["recipe"]: recipe for recipe in previous.get("recipes", [])}


def main(argv=None) -> dict[str, Any]:
    (args,) = HfArgumentParser(CurveArguments).parse_args_into_dataclasses(args=argv)
    return run(args)


if __name__ == "__main__":
    main()
