#!/usr/bin/env python
"""Benchmark: the RQ-VAE with its default config on Amazon Beauty (all 12,101 items, offline MiniLM embeddings).

Usage:
    python scripts/benchmarks/rqvae_beauty.py --data_dir ../shared/data [--num_threads 1] [--quantizer ste]

Embeds "{title_keywords}; {attributes}" of every item with hf_tiger.data.embed_items (cached on disk, so only
the first run pays for it), trains with `train_rqvae` and the package defaults, and prints a Markdown table:
wall time, per-level code usage, share of items unique at 3 levels, largest collision group, against the
targets (>= 90% usage per level, >= 95% unique, largest group <= 8, training <= 5 minutes on 2 CPU cores).
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import HfArgumentParser, set_seed

from hf_tiger.data import embed_items, load_items, minilm_path
from hf_tiger.models.rqvae import RQVAEConfig, make_training_args, train_rqvae

TARGET_USAGE = 0.90
TARGET_UNIQUE = 0.95
TARGET_LARGEST_GROUP = 8
TARGET_SECONDS = 300


@dataclass
class BenchmarkArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Root of the shared data (../shared/data)."})
    dataset: str = field(default="amazon-p5/beauty", metadata={"help": "Catalogue to benchmark on."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where to save the model (default: a tmp dir)."}
    )
    embedding_cache_dir: str | None = field(default=None, metadata={"help": "Embedding cache folder."})
    num_threads: int = field(
        default=1,
        metadata={"help": "torch threads; 1 avoids OpenMP spin-waiting when other jobs share the 2 cores."},
    )
    quantizer: str | None = field(default=None, metadata={"help": "Override the default quantizer."})
    num_train_epochs: float | None = field(default=None, metadata={"help": "Override the default epochs."})
    seed: int = field(default=42, metadata={"help": "Seed."})


def _mark(ok: bool) -> str:
    return "yes" if ok else "NO"


def run(args: BenchmarkArguments) -> dict:
    torch.set_num_threads(args.num_threads)
    set_seed(args.seed)
    load_before = os.getloadavg()

    items = load_items(args.dataset, data_dir=args.data_dir)
    started = time.time()
    embeddings = embed_items(
        items, str(minilm_path()), cache_dir=args.embedding_cache_dir, device="cpu", show_progress_bar=False
    )
    embed_seconds = time.time() - started
    embeddings = torch.from_numpy(np.asarray(embeddings, dtype=np.float32))

    config = RQVAEConfig(input_dim=embeddings.shape[1])
    if args.quantizer:
        config.quantizer = args.quantizer
    overrides = {"seed": args.seed}
    if args.num_train_epochs is not None:
        overrides["num_train_epochs"] = args.num_train_epochs
    with tempfile.TemporaryDirectory() as tmp:
        output_dir = args.output_dir or tmp
        training_args = make_training_args(output_dir, **overrides)
        started = time.time()
        _, metrics = train_rqvae(embeddings, config, training_args, output_dir=output_dir)
        wall = time.time() - started
    load_after = os.getloadavg()

    levels = config.num_levels
    usage = [metrics[f"code_usage_l{level}"] for level in range(levels)]
    rows = [
        (
            "training wall time (k-means, Trainer, final eval, save)",
            f"{wall:.1f} s",
            f"<= {TARGET_SECONDS} s",
            _mark(wall <= TARGET_SECONDS),
        )
    ]
    for level in range(levels):
        rows.append(
            (
                f"code usage level {level} (perplexity {metrics[f'perplexity_l{level}']:.0f})",
                f"{usage[level]:.1%}",
                f">= {TARGET_USAGE:.0%}",
                _mark(usage[level] >= TARGET_USAGE),
            )
        )
    rows += [
        (
            f"items unique at {levels} levels",
            f"{metrics['unique_fraction']:.2%}",
            f">= {TARGET_UNIQUE:.0%}",
            _mark(metrics["unique_fraction"] >= TARGET_UNIQUE),
        ),
        (
            "largest collision group",
            str(metrics["largest_collision_group"]),
            f"<= {TARGET_LARGEST_GROUP}",
            _mark(metrics["largest_collision_group"] <= TARGET_LARGEST_GROUP),
        ),
        ("reconstruction error (sum of squares per item)", f"{metrics['reconstruction_error']:.4f}", "", ""),
    ]
    print(
        f"\nRQ-VAE on {args.dataset}: {embeddings.shape[0]} items, MiniLM {embeddings.shape[1]}-d "
        f"(embedding {embed_seconds:.1f} s, cached after the first run); quantizer={config.quantizer}, "
        f"{int(metrics['train_steps'])} steps of batch {training_args.per_device_train_batch_size}, "
        f"{training_args.num_train_epochs:g} epochs"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"torch threads {torch.get_num_threads()}, load average {load_before[0]:.1f} before / "
        f"{load_after[0]:.1f} after (shared with other jobs)\n"
    )
    print("| metric | value | target | met |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    met = all(row[3] != "NO" for row in rows)
    print(f"\nall targets met: {_mark(met)}")
    return {**metrics, "wall_seconds": wall, "embed_seconds": embed_seconds, "targets_met": met}


if __name__ == "__main__":
    (benchmark_args,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses()
    run(benchmark_args)
