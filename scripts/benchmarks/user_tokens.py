#!/usr/bin/env python
"""Benchmark: how much a saved TIGER model's held-out loss depends on the user token.

Usage:
    python scripts/benchmarks/user_tokens.py --model_name_or_path runs/beauty --dataset amazon-p5/beauty \
        --data_dir ../shared/data [--splits validation test] [--output_file user_tokens.json]

For every row of each split, computes the teacher-forced loss of the target's semantic ID (nats per item: the sum
over its `num_levels` tokens) three ways: with the row's own hashed user token, with the token of another user
(a fixed random permutation of the rows), and with no user token. If "another user's" is as good as "own", the
model has learnt nothing user-specific from the token. Prints a Markdown table.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from transformers import HfArgumentParser

from hf_tiger.data import load_sequences
from hf_tiger.training.data import TigerDataCollator
from hf_tiger.training.evaluation import load_model_and_tokenizer

VARIANTS = ("own user", "another user", "no user")


@dataclass
class UserTokenArguments:
    model_name_or_path: str = field(metadata={"help": "A saved TIGER model folder (with its tokenizer)."})
    dataset: str = field(default="amazon-p5/beauty", metadata={"help": "load_sequences name."})
    data_dir: str | None = field(default=None, metadata={"help": "Root of the shared data (../shared/data)."})
    splits: list[str] = field(
        default_factory=lambda: ["validation", "test"], metadata={"help": "Splits to score."}
    )
    batch_size: int = field(default=512, metadata={"help": "Rows per forward pass."})
    max_samples: int | None = field(default=None, metadata={"help": "First N rows of each split only."})
    seed: int = field(
        default=0, metadata={"help": "Seed of the permutation that picks another user's token."}
    )
    output_file: str | None = field(default=None, metadata={"help": "Also write the figures as JSON here."})


def user_token_losses(model, tokenizer, split, batch_size: int = 512, seed: int = 0) -> dict[str, float]:
    """Mean held-out loss in nats per item with the own, another user's, and no user token (see module doc)."""
    if not tokenizer.num_user_buckets:
        raise ValueError("the tokenizer has no user tokens (num_user_buckets=0): nothing to compare")
    histories, targets, users = split["history"], split["target"], split["user_id"]
    if not len(targets):
        raise ValueError("the split is empty")
    others = np.random.default_rng(seed).permutation(len(targets))
    collator = TigerDataCollator(pad_token_id=tokenizer.pad_token_id)
    totals = dict.fromkeys(VARIANTS, 0.0)
    model.eval()
    for start in range(0, len(targets), batch_size):
        rows = range(start, min(start + batch_size, len(targets)))
        labels = [tokenizer.encode_target(targets[i]) for i in rows]
        items = [
            tokenizer.encode_history(histories[i]) for i in rows
        ]  # the tokenizer keeps max_history items
        inputs = {
            "own user": [[tokenizer.user_token_id(users[i])] + x for i, x in zip(rows, items)],
            "another user": [
                [tokenizer.user_token_id(users[int(others[i])])] + x for i, x in zip(rows, items)
            ],
            "no user": items,
        }
        for variant, input_ids in inputs.items():
            batch = collator([{"input_ids": x, "labels": y} for x, y in zip(input_ids, labels)])
            batch = {k: v.to(model.device) for k, v in batch.items()}
            with torch.no_grad():
                logits = model(**batch).logits
            nll = F.cross_entropy(logits.float().transpose(1, 2), batch["labels"], reduction="none")
            totals[variant] += float(nll.sum())
    return {variant: total / len(targets) for variant, total in totals.items()}


def run(args: UserTokenArguments) -> dict[str, dict[str, float]]:
    started = time.time()
    model, tokenizer = load_model_and_tokenizer(args.model_name_or_path)
    splits = load_sequences(args.dataset, data_dir=args.data_dir, max_history=model.config.max_history)
    results = {}
    for name in args.splits:
        if name not in splits:
            raise ValueError(f"unknown split {name!r}; {args.dataset} has {list(splits)}")
        split = splits[name]
        if args.max_samples is not None:
            split = split.select(range(min(args.max_samples, split.num_rows)))
        results[name] = user_token_losses(model, tokenizer, split, batch_size=args.batch_size, seed=args.seed)
    print(f"\n{args.model_name_or_path} on {args.dataset} ({time.time() - started:.1f} s)")
    print("held-out loss, nats per item (teacher forced)\n")
    print("| split | " + " | ".join(VARIANTS) + " |")
    print("|---|" + "---|" * len(VARIANTS))
    for name, losses in results.items():
        print(f"| {name} | " + " | ".join(f"{losses[v]:.3f}" for v in VARIANTS) + " |")
    if args.output_file:
        with open(args.output_file, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return results


def main(argv=None) -> dict[str, dict[str, float]]:
    (args,) = HfArgumentParser(UserTokenArguments).parse_args_into_dataclasses(args=argv)
    return run(args)


if __name__ == "__main__":
    main()
