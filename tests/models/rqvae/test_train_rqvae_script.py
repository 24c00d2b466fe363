"""scripts/train_rqvae.py: YAML/JSON config + flags -> a trained, saved RQ-VAE with metrics and a usage plot."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel

import hf_tiger  # noqa: F401  (registers rqvae with AutoModel)
from hf_tiger.data import save_item_embeddings

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "train_rqvae.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_rqvae_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()  # main() applies --num_threads
    yield module
    torch.set_num_threads(threads)
    sys.modules.pop(spec.name, None)


@pytest.fixture
def embeddings_file(tmp_path):
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(20, 24, generator=generator)
    embeddings = centres[torch.arange(300) % 20] + 0.3 * torch.randn(300, 24, generator=generator)
    return save_item_embeddings(tmp_path / "emb.safetensors", embeddings.numpy(), list(range(1, 301)))


def test_script_trains_from_a_config_file_with_flag_overrides(script, embeddings_file, tmp_path):
    config = {
        "hidden_dims": [32],
        "latent_dim": 8,
        "codebook_size": 8,
        "quantizer": "ste",
        "autoencoder_warmup_steps": 3,
        "num_train_epochs": 4,
        "per_device_train_batch_size": 64,
        "num_threads": 1,
    }
    (tmp_path / "rqvae.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    metrics = script.main(
        [
            str(tmp_path / "rqvae.json"),
            "--item_embeddings_file",
            str(embeddings_file),
            "--output_dir",
            str(out),
        ]
        + ["--quantizer", "rotation"]
    )
    assert metrics["train_steps"] == 4 * 5
    for name in (
        "config.json",
        "model.safetensors",
        "rqvae_metrics.json",
        "code_usage.png",
        "modeling_rqvae.py",
    ):
        assert (out / name).is_file(), name
    model = AutoModel.from_pretrained(out)
    assert model.config.quantizer == "rotation"  # the flag beats the file
    assert model.config.hidden_dims == [32] and model.config.input_dim == 24
    assert model.is_initialized
    assert json.loads((out / "rqvae_metrics.json").read_text())["num_items"] == 300


def test_script_rejects_unknown_config_keys(script, tmp_path):
    (tmp_path / "bad.yaml").write_text("codebook_size: 8\ncodebok_size: 9\n")
    with pytest.raises(ValueError, match="codebok_size"):
        script.parse_arguments([str(tmp_path / "bad.yaml")])


def test_shipped_configs_parse(script):
    for path in sorted((SCRIPT.parent / "configs").glob("rqvae_*.yaml")):
        data_args, rqvae_args, training_args = script.parse_arguments([str(path)])
        assert rqvae_args.quantizer in ("ste", "rotation", "gumbel"), path
        assert training_args.num_train_epochs > 0
        assert np.isfinite(training_args.learning_rate)
