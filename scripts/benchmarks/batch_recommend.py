#!/usr/bin/env python
"""Benchmark: batch recommendation users/s with 1 process and with N processes (`accelerate launch`), same output.

Usage:
    python scripts/benchmarks/batch_recommend.py --model_name_or_path runs/beauty-cpu \
        --dataset amazon-p5/beauty --data_dir ../shared/data --split test --output_dir runs/batch-bench

Runs `scripts/recommend.py` in batch mode over every user of the split, first in one process with all the
machine's threads, then under `accelerate launch --num_processes N` with `threads / N` threads each (the same
cores), each into a fresh output folder, and prints users/s (wall time of the whole command, start-up included,
and of the recommendation loop alone), and whether the merged outputs are byte-identical. On CPUs the two runs
differ in threads per process, which can change the last bits of a score; the item lists are compared too.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

REPO = Path(__file__).resolve().parents[2]
RECOMMEND = REPO / "scripts" / "recommend.py"


@dataclass
class BatchBenchmarkArguments:
    model_name_or_path: str = field(metadata={"help": "Saved TIGER folder (model + tokenizer)."})
    dataset: str = field(default="amazon-p5/beauty", metadata={"help": "load_sequences name."})
    data_dir: str | None = field(default=None, metadata={"help": "Data root."})
    split: str = field(default="test", metadata={"help": "Split whose users are scored."})
    output_dir: str = field(default="runs/batch-bench", metadata={"help": "One folder per run (replaced)."})
    num_processes: int = field(default=2, metadata={"help": "Processes of the sharded run."})
    threads: int | None = field(default=None, metadata={"help": "Threads in all (default: os.cpu_count())."})
    top_k: int = field(default=10, metadata={"help": "Items per user."})
    num_beams: int = field(default=20, metadata={"help": "Beams of the constrained search."})
    shard_size: int = field(default=1024, metadata={"help": "Users per shard."})


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed_run(launcher: list[str], args: BatchBenchmarkArguments, folder: Path, threads: int) -> dict:
    shutil.rmtree(folder, ignore_errors=True)
    command = [
        *launcher, str(RECOMMEND), "--model_name_or_path", args.model_name_or_path, "--dataset", args.dataset,
        "--split", args.split, "--output_dir", str(folder), "--top_k", str(args.top_k),
        "--num_beams", str(args.num_beams), "--shard_size", str(args.shard_size),
    ]
    if args.data_dir:
        command += ["--data_dir", args.data_dir]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {
        "wall_seconds": wall,
        "loop_seconds": max(r["seconds"] for r in reports),
        "num_users": reports[0]["num_users"],
        "output": Path(reports[0]["output"]),
    }


def main(argv=None) -> list[dict]:
    (args,) = HfArgumentParser(BatchBenchmarkArguments).parse_args_into_dataclasses(args=argv)
    threads = args.threads or os.cpu_count() or 1
    per_process = max(1, threads // args.num_processes)
    out = Path(args.output_dir)
    single = timed_run([sys.executable], args, out / "one-process", threads)
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(args.num_processes),
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
    ]
    sharded = timed_run(launch, args, out / f"{args.num_processes}-processes", per_process)
    same_bytes = single["output"].read_bytes() == sharded["output"].read_bytes()
    lines = [single["output"].read_text().splitlines(), sharded["output"].read_text().splitlines()]
    same_items = [json.loads(a)["items"] for a in lines[0]] == [json.loads(b)["items"] for b in lines[1]]
    rows = [
        {"setting": f"1 process x {threads} threads", **single},
        {"setting": f"{args.num_processes} processes x {per_process} threads", **sharded},
    ]
    print(f"\nbatch recommendation: {single['num_users']:,} users of {args.dataset}/{args.split}, top {args.top_k}, "
          f"{args.num_beams} beams")
    print("| setting | users/s (whole command) | users/s (recommendation loop) | wall s |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['setting']} | {row['num_users'] / row['wall_seconds']:.1f} "
              f"| {row['num_users'] / row['loop_seconds']:.1f} | {row['wall_seconds']:.0f} |")
    print(f"merged outputs byte-identical: {same_bytes}; same item lists: {same_items}")
    for row in rows:
        row["output"] = str(row["output"])
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
