"""Helpers of the training tests (imported by name: pytest puts this folder on sys.path)."""

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

TINY_MODEL = {"d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 1, "num_heads": 2, "dropout_rate": 0.0}


def tiny_cli_args(tokenizer_dir, data_dir, output_dir, cache_dir, **overrides) -> list[str]:
    """Command line of scripts/train_tiger.py for a few CPU steps on ML-100K subsets."""
    values = {
        "dataset": "ml-100k",
        "data_dir": str(data_dir),
        "tokenizer_name_or_path": str(tokenizer_dir),
        "output_dir": str(output_dir),
        "tokenized_cache_dir": str(cache_dir),
        "max_train_samples": 256,
        "max_eval_samples": 37,
        "max_test_samples": 41,
        **{k: v for k, v in TINY_MODEL.items()},
        "max_steps": 8,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 8,
        "learning_rate": 0.01,
        "warmup_steps": 2,
        "eval_strategy": "steps",
        "save_strategy": "steps",
        "eval_steps": 4,
        "save_steps": 4,
        "logging_steps": 4,
        "generation_num_beams": 10,
        "use_cpu": "true",
        "report_to": "none",
        "disable_tqdm": "true",
        "seed": 7,
        "data_seed": 7,
    }
    values.update(overrides)
    args = []
    for key, value in values.items():
        args += [f"--{key}", str(value)]
    return args


def script_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    return env


PYTHON = sys.executable
