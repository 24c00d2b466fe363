#!/usr/bin/env python
"""Benchmark: TIGER training examples per second, side by side in one run (same model, data and machine).

Usage:
    python scripts/benchmarks/train_throughput.py --data_dir ../shared/data --dataset amazon-p5/beauty \
        --tokenizer_name_or_path runs/beauty/tokenizer [--batch_sizes 256] [--steps 40] [--skip 5] \
        [--settings bare trainer_random trainer_grouped default bf16_grouped compile]

Builds the paper-size TIGER (4+4 layers, d_model 128, 6 heads, d_ff 1024, dropout 0.1; or the sizes given) on the
tokenizer's catalogue and times `--steps` training steps per setting, from step `--skip` on:

- `bare`: a plain PyTorch loop (`model(...).loss.backward()`, `AdamW.step()`) over random full-length batches,
  with `nn.Dropout` and T5's attention dropout: what a user writes by hand, fp32;
- `trainer_random`: the training script's path with the settings that were the defaults before this benchmark
  (random batches, `nn.Dropout`, attention dropout = dropout_rate), fp32;
- `trainer_grouped`: the same with length-grouped batches;
- `default`: the training script's path with today's defaults (length-grouped batches, `TigerDropout`), plus
  `--attention_dropout_rate` when given;
- `bf16_grouped`: `default` with `bf16=True` (autocast; on CPU worthwhile only with AMX / AVX512-BF16);
- `compile`: `default` with `torch_compile=True`;
- `user_sequences`: `default` with a causal encoder (`causal_encoder=True`) trained on user sequences
  (`user_sequences=True`): one encoder pass per window of up to 21 items serves all its targets. A batch holds
  `round(batch_size / mean targets per window)` windows, so about `batch_size` examples (targets) per step;
  examples/s counts the targets of the timed batches;
- `bf16_user_sequences`: `user_sequences` in bf16 mixed precision (the training script's choice on a CPU with AMX /
  AVX512-BF16: `tiger_beauty_cpu.yaml` there).

Every setting but the two `bf16_*` runs in fp32, also on a CPU where the training script would turn bf16 on by
itself (`auto_cpu_bf16` is off here), so the rows compare precisions on the same machine.

For each it prints examples/s, the mean padded input width, the achieved GFLOP/s (FLOPs of every timed batch
counted with `torch.utils.flop_counter` at its shape) and the share of the machine's measured fp32 matmul peak
(a 4096x1024x1024 matmul, timed in the same run, fp32 and bf16). The CPU's name and whether it has AMX /
AVX512-BF16 are printed with the table.
"""

from __future__ import annotations

import platform
import random
import tempfile
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import HfArgumentParser, TrainerCallback, set_seed

from hf_tiger import SemanticIDTokenizer, TigerConfig, TigerForConditionalGeneration
from hf_tiger.data import load_sequences
from hf_tiger.machine import cpu_description, matmul_peak
from hf_tiger.models.tiger.modeling_tiger import TigerDropout
from hf_tiger.training import TigerModelArguments, TigerTrainingArguments
from hf_tiger.training.data import TigerDataCollator, tokenize_split
from hf_tiger.training.trainer import TigerTrainer

SETTINGS = (
    "bare",
    "trainer_random",
    "trainer_grouped",
    "default",
    "bf16_grouped",
    "compile",
    "user_sequences",
    "bf16_user_sequences",
)


@dataclass
class ThroughputArguments:
    tokenizer_name_or_path: str = field(metadata={"help": "A saved SemanticIDTokenizer (or model folder)."})
    data_dir: str | None = field(default=None, metadata={"help": "Root of the shared data (../shared/data)."})
    dataset: str = field(default="amazon-p5/beauty", metadata={"help": "load_sequences name."})
    batch_sizes: list[int] = field(default_factory=lambda: [256], metadata={"help": "Batch sizes to time."})
    steps: int = field(default=40, metadata={"help": "Training steps per setting."})
    skip: int = field(default=5, metadata={"help": "Steps before the timer starts (warm-up, compilation)."})
    settings: list[str] = field(
        default_factory=lambda: ["bare", "trainer_random", "trainer_grouped", "default"],
        metadata={"help": f"Settings to time, from {list(SETTINGS)}."},
    )
    d_model: int = field(default=128, metadata={"help": "Model width (paper: 128)."})
    d_ff: int = field(default=1024, metadata={"help": "Feed-forward width (paper: 1024)."})
    num_layers: int = field(default=4, metadata={"help": "Encoder and decoder layers (paper: 4)."})
    attention_dropout_rate: float | None = field(
        default=None, metadata={"help": "attention_dropout_rate of the 'default' setting (default: dropout_rate)."}
    )
    dataloader_num_workers: int = field(default=0, metadata={"help": "DataLoader workers."})
    seed: int = field(default=42, metadata={"help": "Seed."})

    def __post_init__(self):
        unknown = [s for s in self.settings if s not in SETTINGS]
        if unknown:
            raise ValueError(f"unknown settings {unknown}; choose from {list(SETTINGS)}")
        if self.steps <= self.skip:
            raise ValueError(f"--steps ({self.steps}) must exceed --skip ({self.skip})")


class _StepTimer(TrainerCallback):
    def __init__(self, start_step: int):
        self.start_step = start_step
        self.started: float | None = None
        self.stopped: float | None = None
        self.steps = 0

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.start_step:
            self.started = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.stopped = time.perf_counter()
        self.steps = state.global_step - self.start_step


class _ShapeRecorder(TigerDataCollator):
    """The collator, remembering the shape of every batch it builds: `(examples, batch, width, decoder steps)`.

    For row batches examples = batch and the decoder steps are `num_levels`; for user-sequence batches (packed
    targets) examples counts the targets."""

    def __init__(self, pad_token_id: int):
        super().__init__(pad_token_id=pad_token_id)
        self.shapes: list[tuple[int, int, int, int]] = []

    def __call__(self, features):
        batch = super().__call__(features)
        size, width = batch["input_ids"].shape
        labels = batch["labels"]
        if "cross_attention_mask" in batch:
            examples = int((labels != -100).sum()) // len(features[0]["labels"][0])
        else:
            examples = size
        self.shapes.append((examples, size, width, labels.shape[1]))
        return batch


def plain_dropout_(model: nn.Module) -> nn.Module:
    """Swap `TigerDropout` back to `nn.Dropout` (the `bernoulli_` masks of the earlier default)."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, TigerDropout):
                setattr(module, name, nn.Dropout(child.p))
    return model


def build_model(
    tokenizer, args: ThroughputArguments, attention_dropout_rate=None, plain_dropout=False, causal_encoder=False
):
    set_seed(args.seed)
    sizes = TigerModelArguments(
        d_model=args.d_model,
        d_ff=args.d_ff,
        num_layers=args.num_layers,
        attention_dropout_rate=attention_dropout_rate,
        causal_encoder=causal_encoder,
    ).model_sizes()
    model = TigerForConditionalGeneration(TigerConfig.from_tokenizer(tokenizer, **sizes))
    model.set_catalogue(tokenizer)
    return plain_dropout_(model) if plain_dropout else model


class FlopTable:
    """FLOPs of one training step (forward + backward) per batch shape, counted once per shape."""

    def __init__(self, tokenizer, args: ThroughputArguments):
        self.model = build_model(tokenizer, args).train()
        self.causal = build_model(tokenizer, args, causal_encoder=True).train()
        self.num_levels = tokenizer.num_levels
        self.eos = tokenizer.eos_token_id
        self.cache: dict[tuple[int, ...], int] = {}

    def __call__(self, shape: tuple[int, int, int, int]) -> int:
        _, batch, width, steps = shape
        key = (batch, width, steps)
        if key not in self.cache:
            input_ids = torch.full((batch, width), 5, dtype=torch.long)
            labels = torch.full((batch, steps), 5, dtype=torch.long)
            inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
            model = self.model
            if steps != self.num_levels:  # packed user-sequence targets
                model = self.causal
                input_ids[:, 1::2] = self.eos  # interleaved </s>: the relative-position correction is counted
                inputs["decoder_input_ids"] = labels
                inputs["decoder_attention_mask"] = torch.ones((batch, steps, steps), dtype=torch.bool)
                inputs["cross_attention_mask"] = torch.ones((batch, steps, width), dtype=torch.bool)
            counter = FlopCounterMode(display=False)
            with counter:
                model(**inputs).loss.backward()
            model.zero_grad(set_to_none=True)
            self.cache[key] = counter.get_total_flops()
        return self.cache[key]


def time_bare(tokenizer, train, batch_size: int, args: ThroughputArguments) -> dict:
    """A hand-written fp32 loop over random full-length batches."""
    model = build_model(tokenizer, args, plain_dropout=True).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    collator = _ShapeRecorder(tokenizer.pad_token_id)
    order = list(range(train.num_rows))
    random.Random(args.seed).shuffle(order)
    started = None
    for step in range(args.steps):
        if step == args.skip:
            started = time.perf_counter()
            collator.shapes.clear()
        rows = order[(step * batch_size) % len(order) :][:batch_size]
        batch = collator([train[i] for i in rows])
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return {
        "seconds": time.perf_counter() - started,
        "shapes": collator.shapes,
        "steps": args.steps - args.skip,
        "precision": "fp32",
    }


def time_trainer(tokenizer, train, batch_size: int, setting: str, args: ThroughputArguments) -> dict:
    """The training script's path (TigerTrainer) for one setting."""
    old = setting in ("trainer_random", "trainer_grouped")
    model = build_model(
        tokenizer,
        args,
        attention_dropout_rate=None if old else args.attention_dropout_rate,
        plain_dropout=old,
        causal_encoder=setting.endswith("user_sequences"),
    )
    collator = _ShapeRecorder(tokenizer.pad_token_id)
    timer = _StepTimer(args.skip)
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = TigerTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=batch_size,
            max_steps=args.steps,
            learning_rate=1e-3,
            use_cpu=not torch.cuda.is_available(),
            bf16=setting.startswith("bf16_"),
            auto_cpu_bf16=False,
            torch_compile=setting == "compile",
            train_sampling_strategy="random" if setting == "trainer_random" else "group_by_length",
            dataloader_num_workers=args.dataloader_num_workers,
            eval_strategy="no",
            save_strategy="no",
            load_best_model_at_end=False,
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=args.seed,
        )
        trainer = TigerTrainer(
            model=model, args=training_args, train_dataset=train, data_collator=collator, callbacks=[timer]
        )
        trainer.train()
        precision = "bf16" if training_args.bf16 else "fp32"
    # one batch per step, collated in step order (no workers, no accumulation); the timed steps are skip..steps-1
    shapes = collator.shapes[args.skip : args.skip + timer.steps]
    return {"seconds": timer.stopped - timer.started, "shapes": shapes, "steps": timer.steps, "precision": precision}


def run(args: ThroughputArguments) -> list[dict]:
    tokenizer = SemanticIDTokenizer.from_pretrained(args.tokenizer_name_or_path)
    splits = load_sequences(args.dataset, data_dir=args.data_dir)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        train = tokenize_split(splits["train"], tokenizer, split_name="train", cache_dir=cache_dir)
        sequences = None
        if any(setting.endswith("user_sequences") for setting in args.settings):
            sequences = tokenize_split(
                splits["train"], tokenizer, split_name="train", cache_dir=cache_dir, user_sequences=True
            )
            targets_per_window = train.num_rows / sequences.num_rows
        flops = FlopTable(tokenizer, args)
        for batch_size in args.batch_sizes:
            for setting in args.settings:
                if setting == "bare":
                    timed = time_bare(tokenizer, train, batch_size, args)
                elif setting.endswith("user_sequences"):
                    windows = max(1, round(batch_size / targets_per_window))
                    timed = time_trainer(tokenizer, sequences, windows, setting, args)
                else:
                    timed = time_trainer(tokenizer, train, batch_size, setting, args)
                shapes = timed["shapes"]
                examples = sum(shape[0] for shape in shapes)
                total_flops = sum(flops(shape) for shape in shapes)
                rows.append(
                    {
                        "batch_size": batch_size,
                        "setting": setting,
                        "precision": timed["precision"],
                        "examples_per_second": examples / timed["seconds"],
                        "examples_per_step": examples / max(len(shapes), 1),
                        "mean_width": sum(shape[2] for shape in shapes) / max(len(shapes), 1),
                        "gflops": total_flops / timed["seconds"] / 1e9,
                        "examples_timed": examples,
                    }
                )
    name, support = cpu_description()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"{name}, {torch.get_num_threads()} threads"
    print(f"\nTIGER (d_model {args.d_model}, d_ff {args.d_ff}, {args.num_layers}+{args.num_layers} layers) training on "
          f"{args.dataset} ({train.num_rows} rows); {device}; torch {torch.__version__}")
    print(f"CPU bf16: {support}; matmul peak fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s; "
          f"steps {args.skip}..{args.steps} timed; {platform.platform()}\n")
    print("| batch | setting | precision | examples/s | vs bare | examples/step | mean width | GFLOP/s | % of fp32 peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        bare = next((r for r in rows if r["setting"] == "bare" and r["batch_size"] == row["batch_size"]), None)
        ratio = f"{row['examples_per_second'] / bare['examples_per_second']:.2f}x" if bare else "-"
        print(
            f"| {row['batch_size']} | {row['setting']} | {row['precision']} | {row['examples_per_second']:.0f} | {ratio} | "
            f"{row['examples_per_step']:.1f} | {row['mean_width']:.1f} | {row['gflops']:.1f} | "
            f"{100 * row['gflops'] / peaks['fp32']:.0f}% |"
        )
    return rows


def main(argv=None) -> list[dict]:
    (args,) = HfArgumentParser(ThroughputArguments).parse_args_into_dataclasses(args=argv)
    return run(args)


if __name__ == "__main__":
    main()
