"""Shared test set-up: offline Hub, small thread pool, and the location of the shared real data."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# fp32 on every CPU (no automatic bf16 on AMX / AVX512-BF16 machines), so results do not depend on the machine;
# the bf16 tests turn it on themselves
os.environ["HF_TIGER_CPU_BF16"] = "0"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("HF_TIGER_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """`../shared/data` (or `$HF_TIGER_DATA_DIR`): the real public data sets. Skips when absent."""
    path = _shared_data_dir()
    if not (path / "amazon-p5").is_dir():
        pytest.skip(f"shared data not found at {path} (set HF_TIGER_DATA_DIR)")
    return path


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
