"""What the machine computes with: the CPU's name, its native bf16 support and its measured matmul peak."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from .models.tiger.generation_tiger import cpu_bf16_support


def cpu_description() -> tuple[str, str]:
    """The CPU's model name and its native bf16 support (AMX / AVX512-BF16 flags of /proc/cpuinfo)."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        with cpuinfo.open(encoding="utf-8") as lines:
            name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), name)
    return name, cpu_bf16_support()[1]


def matmul_peak(dtype: torch.dtype, repeats: int = 5, size: tuple[int, int, int] = (4096, 1024, 1024)) -> float:
    """GFLOP/s of one ``(m, k) @ (k, n)`` CPU matmul in `dtype` (default 4096x1024 @ 1024x1024), mean of `repeats`
    runs after two warm-up runs.

    The reference the benchmarks put their achieved GFLOP/s beside: with the current thread count, on this CPU.
    """
    m, k, n = size
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(2):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * m * k * n * repeats / (time.perf_counter() - started) / 1e9


def align_accelerator_precision(args) -> None:
    """Let a Trainer built with `args` start when an earlier one in this process used another mixed precision.

    accelerate keeps one `AcceleratorState` per process and refuses a second `Accelerator` whose mixed precision
    differs ("AcceleratorState has already been initialized and cannot be changed"). That happens in one process
    that trains the RQ-VAE in fp32 and then TIGER in bf16, which is what the training script does on a CPU with
    native bf16. The precision part of the state is dropped (the process/device part is kept), so the next
    `Accelerator` sets it afresh; nothing is done when the precisions agree or no state exists yet.
    """
    from accelerate.state import AcceleratorState

    if not AcceleratorState._shared_state:
        return
    wanted = "bf16" if getattr(args, "bf16", False) else "fp16" if getattr(args, "fp16", False) else "no"
    current = AcceleratorState._shared_state.get("_mixed_precision", wanted)
    if current != wanted:
        AcceleratorState._reset_state(reset_partial_state=False)


class PrecisionAlignedTrainerMixin:
    """Mixed into a `transformers.Trainer` subclass (listed first): [`align_accelerator_precision`] runs where the
    Trainer creates its `Accelerator`, so fp32 and bf16 Trainers can follow each other in one process."""

    def create_accelerator_and_postprocess(self):
        align_accelerator_precision(self.args)
        super().create_accelerator_and_postprocess()
