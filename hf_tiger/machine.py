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
