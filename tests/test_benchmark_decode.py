"""scripts/benchmarks/decode.py at smoke size: the side-by-side table and the fp32 / bf16 full evaluation."""

import pytest
from hub_helpers import load_script, tiny_ml100k_tiger

SCRIPT = "benchmarks/decode.py"


def test_decode_table_and_precisions_on_random_users(tmp_path, capsys, monkeypatch):
    script = load_script(SCRIPT, monkeypatch)
    result = script.main(
        ["--quick", "--num_items", "300", "--num_test_users", "40", "--num_beams", "10", "--history_length", "5",
         "--flop_sample", "8", "--precisions", "fp32", "bf16"]
    )
    printed = capsys.readouterr().out
    methods = [row["method"] for row in result["rows"]]
    assert methods == ["unconstrained", "transformers+processor", "transformers+prefix_fn", "fast (ours)"]
    fast = result["rows"][-1]
    assert fast["same"].startswith("yes")
    fp32, bf16 = result["full_evaluation"]["rows"]
    assert (fp32["computes"], bf16["computes"]) == ("fp32", "bf16")
    assert fp32["same_top_k"] == 1.0 and 0.0 <= bf16["same_top_k"] <= 1.0 and bf16["overlap"] >= 0.5
    for row in (fp32, bf16):
        assert row["users"] == 40 and row["users_per_second"] > 0 and row["gflops"] > 0
        assert 0 < row["peak_share"]
    assert "| precision | batch | computes in |" in printed and "matmul peak fp32" in printed and "bf16:" in printed


def test_decode_full_evaluation_of_a_saved_model_on_real_users(shared_data_dir, tmp_path, capsys, monkeypatch):
    script = load_script(SCRIPT, monkeypatch)
    folder = tiny_ml100k_tiger(tmp_path / "tiger")
    result = script.main(
        ["--skip_table", "--model_name_or_path", str(folder), "--dataset", "ml-100k", "--data_dir",
         str(shared_data_dir), "--num_test_users", "30", "--num_beams", "10", "--flop_sample", "8",
         "--precisions", "auto", "fp32", "fp32@7"]
    )
    printed = capsys.readouterr().out
    auto, fp32, rebatched = result["full_evaluation"]["rows"]
    # "auto" decodes in fp32 on every CPU, so both settings give the same lists
    assert auto["computes"] == "fp32" and fp32["same_top_k"] == 1.0
    # PRECISION@BATCH: the same precision in batches of 7 (fp32's agreement with itself under another batching)
    assert (rebatched["precision"], rebatched["batch_size"], auto["batch_size"]) == ("fp32", 7, 64)
    assert rebatched["computes"] == "fp32" and rebatched["overlap"] > 0.9
    assert "| fp32 | 7 | fp32 |" in printed
    assert result["full_evaluation"]["users"] == 30 and "ml-100k test users" in printed
    # a model trained without user tokens (the adopted recipes) decodes without user ids, in the table too
    plain = tmp_path / "plain"
    from hf_tiger import SemanticIDTokenizer, TigerConfig, TigerForConditionalGeneration

    tokenizer = SemanticIDTokenizer.from_pretrained(folder)
    codes = [list(tokenizer.semantic_id(item))[:-1] for item in tokenizer.item_ids]
    no_users = SemanticIDTokenizer.from_codes(
        codes, item_ids=tokenizer.item_ids, codebook_size=16, collision_size=64, num_user_buckets=0
    )
    model = TigerForConditionalGeneration(TigerConfig.from_tokenizer(no_users, d_model=16, d_kv=8, d_ff=32,
                                                                      num_layers=1, num_heads=2))
    model.set_catalogue(no_users)
    model.save_pretrained(plain)
    no_users.save_pretrained(plain)
    result = script.main(
        ["--model_name_or_path", str(plain), "--batch_sizes", "4", "--num_test_users", "12", "--num_beams", "10",
         "--flop_sample", "4", "--precisions", "fp32", "--history_length", "3"]
    )
    assert len(result["rows"]) == 4 and result["full_evaluation"]["users"] == 12
    for bad in ("fp8", "fp32@0", "bf16@x"):
        with pytest.raises(ValueError, match="--precisions takes"):
            script.main(["--skip_table", "--model_name_or_path", str(folder), "--precisions", bad])
