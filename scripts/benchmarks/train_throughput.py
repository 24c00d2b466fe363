#!/usr/bin/env python
"""Benchmark: TigerTrainer training steps per second, eager vs. torch.compile (same model, same batches).

Usage:
    python scripts/benchmarks/train_throughput.py --data_dir ../shared/data --dataset amazon-p5/beauty \
        --tokenizer_name_or_path runs/beauty/tokenizer [--batch_sizes 256 1024] [--steps 260]

Builds the paper-size TIGER (4+4 layers, d_model 128, 6 heads, d_ff 1024) on the tokenizer's catalogue, then for
each batch size trains `--steps` steps with the Trainer (bf16 + fused AdamW on a GPU), once eagerly and once with
`torch_compile=True`, and prints a Markdown table. Steps/s are timed from step `--skip` on (compilation and
data-loader start-up excluded), with the device synchronised at both ends.
"""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser, TrainerCallback, set_seed

from hf_tiger import SemanticIDTokenizer, TigerConfig, TigerForConditionalGeneration
from hf_tiger.data import load_sequences
from hf_tiger.training import TigerModelArguments, TigerTrainingArguments
from hf_tiger.training.data import TigerDataCollator, tokenize_split
from hf_tiger.training.trainer import TigerTrainer


@dataclass
class ThroughputArguments:
    tokenizer_name_or_path: str = field(metadata={"help": "A saved SemanticIDTokenizer (or model folder)."})
    data_dir: str | None = field(default=None, metadata={"help": "Root of the shared data (../shared/data)."})
    dataset: str = field(default="amazon-p5/beauty", metadata={"help": "load_sequences name."})
    batch_sizes: list[int] = field(
        default_factory=lambda: [256, 1024], metadata={"help": "Batch sizes to time."}
    )
    steps: int = field(default=260, metadata={"help": "Training steps per setting."})
    skip: int = field(default=60, metadata={"help": "Steps before the timer starts (warm-up, compilation)."})
    compile_modes: list[str] = field(
        default_factory=lambda: ["eager", "compile"],
        metadata={"help": "Settings to time: eager and/or compile."},
    )
    dataloader_num_workers: int = field(default=4, metadata={"help": "DataLoader workers."})
    train_sampling_strategy: str = field(
        default="random",
        metadata={"help": "TrainingArguments.train_sampling_strategy, e.g. group_by_length (less padding)."},
    )
    seed: int = field(default=42, metadata={"help": "Seed."})


class _StepTimer(TrainerCallback):
    def __init__(self, start_step: int):
        self.start_step = start_step
        self.started: float | None = None
        self.stopped: float | None = None
        self.steps = 0

    @staticmethod
    def _sync():
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.start_step:
            self._sync()
            self.started = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self._sync()
        self.stopped = time.perf_counter()
        self.steps = state.global_step - self.start_step


def time_setting(tokenizer, train, batch_size: int, compiled: bool, args: ThroughputArguments) -> float:
    """Training steps per second of the paper-size TIGER for one batch size and compile setting."""
    set_seed(args.seed)
    config = TigerConfig.from_tokenizer(
        tokenizer, **TigerModelArguments().model_sizes()
    )  # defaults: paper size
    model = TigerForConditionalGeneration(config)
    model.set_catalogue(tokenizer)
    on_gpu = torch.cuda.is_available()
    timer = _StepTimer(args.skip)
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = TigerTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=batch_size,
            max_steps=args.steps,
            learning_rate=1e-3,
            bf16=on_gpu,
            tf32=on_gpu or None,
            optim="adamw_torch_fused" if on_gpu else "adamw_torch",
            torch_compile=compiled,
            dataloader_num_workers=args.dataloader_num_workers,
            train_sampling_strategy=args.train_sampling_strategy,
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=args.seed,
        )
        collator = TigerDataCollator(
            pad_token_id=tokenizer.pad_token_id, pad_to_multiple_of=8 if on_gpu else None
        )
        trainer = TigerTrainer(
            model=model, args=training_args, train_dataset=train, data_collator=collator, callbacks=[timer]
        )
        trainer.train()
    if timer.started is None or timer.steps <= 0:
        raise ValueError(f"--steps ({args.steps}) must exceed --skip ({args.skip})")
    return timer.steps / (timer.stopped - timer.started)


def run(args: ThroughputArguments) -> list[dict]:
    tokenizer = SemanticIDTokenizer.from_pretrained(args.tokenizer_name_or_path)
    splits = load_sequences(args.dataset, data_dir=args.data_dir)
    with tempfile.TemporaryDirectory() as cache_dir:
        train = tokenize_split(splits["train"], tokenizer, split_name="train", cache_dir=cache_dir)
        rows = []
        for batch_size in args.batch_sizes:
            rates = {}
            for mode in args.compile_modes:
                if mode not in ("eager", "compile"):
                    raise ValueError(f"compile_modes takes 'eager' and 'compile', got {mode!r}")
                rates[mode] = time_setting(tokenizer, train, batch_size, mode == "compile", args)
            rows.append({"batch_size": batch_size, **rates})
    device = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(
        f"\nTIGER paper size on {args.dataset} ({train.num_rows} training rows), {device}, torch {torch.__version__}"
    )
    print(
        f"{platform.platform()}; steps {args.skip}..{args.steps} timed; "
        f"train_sampling_strategy={args.train_sampling_strategy}\n"
    )
    print("| batch | eager steps/s | compiled steps/s | speed-up | examples/s (faster setting) |")
    print("|---|---|---|---|---|")
    for row in rows:
        eager, compiled = row.get("eager"), row.get("compile")
        ratio = f"{compiled / eager:.2f}x" if eager and compiled else "-"
        print(
            f"| {row['batch_size']} | {eager or float('nan'):.1f} | {compiled or float('nan'):.1f} | {ratio} | "
            f"{max(r for r in (eager, compiled) if r) * row['batch_size']:.0f} |"
        )
    return rows


def main(argv=None) -> list[dict]:
    (args,) = HfArgumentParser(ThroughputArguments).parse_args_into_dataclasses(args=argv)
    return run(args)


if __name__ == "__main__":
    main()
