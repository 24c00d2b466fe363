"""scripts/benchmarks/user_tokens.py: held-out loss with the own, another user's and no user token."""

import json

import pytest
import torch
import torch.nn.functional as F
from hub_helpers import load_script, tiny_ml100k_tiger

from hf_tiger.data import load_sequences
from hf_tiger.training.data import TigerDataCollator, tokenize_split
from hf_tiger.training.evaluation import load_model_and_tokenizer


def test_user_token_table_and_own_user_loss_match_the_training_encoding(
    shared_data_dir, tmp_path, capsys, monkeypatch
):
    script = load_script("benchmarks/user_tokens.py", monkeypatch)
    folder = tiny_ml100k_tiger(tmp_path / "tiger")
    out_file = tmp_path / "user_tokens.json"
    results = script.main(
        [
            "--model_name_or_path",
            str(folder),
            "--dataset",
            "ml-100k",
            "--data_dir",
            str(shared_data_dir),
            "--max_samples",
            "120",
            "--batch_size",
            "50",
            "--output_file",
            str(out_file),
        ]
    )
    printed = capsys.readouterr().out
    assert set(results) == {"validation", "test"}
    assert json.loads(out_file.read_text()) == results
    assert "| split | own user | another user | no user |" in printed
    assert f"| test | {results['test']['own user']:.3f} |" in printed

    # "own user" is exactly the loss of the training encoding (tokenize_split: user token + items + eos),
    # summed over the target's levels and averaged over rows.
    model, tokenizer = load_model_and_tokenizer(folder)
    split = load_sequences("ml-100k", data_dir=shared_data_dir)["validation"].select(range(120))
    encoded = tokenize_split(split, tokenizer, cache_dir=tmp_path / "cache", split_name="validation")
    batch = TigerDataCollator(pad_token_id=tokenizer.pad_token_id)([encoded[i] for i in range(120)])
    with torch.no_grad():
        logits = model(**batch).logits
    expected = F.cross_entropy(logits.transpose(1, 2), batch["labels"], reduction="none").sum(1).mean()
    assert results["validation"]["own user"] == pytest.approx(float(expected), rel=1e-5)
    # The random (untrained) user embeddings make another user's token a different input.
    assert results["validation"]["another user"] != pytest.approx(results["validation"]["own user"], rel=1e-7)
    assert results["validation"]["no user"] != pytest.approx(results["validation"]["own user"], rel=1e-7)


def test_user_token_errors_are_clear(shared_data_dir, tmp_path, monkeypatch):
    script = load_script("benchmarks/user_tokens.py", monkeypatch)
    folder = tiny_ml100k_tiger(tmp_path / "tiger")
    base = ["--model_name_or_path", str(folder), "--dataset", "ml-100k", "--data_dir", str(shared_data_dir)]
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        script.main([*base, "--splits", "dev"])
    model, tokenizer = load_model_and_tokenizer(folder)
    tokenizer.num_user_buckets = 0
    with pytest.raises(ValueError, match="no user tokens"):
        script.user_token_losses(model, tokenizer, {"history": [[1]], "target": [2], "user_id": [1]})
