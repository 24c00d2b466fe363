"""scripts/benchmarks/train_throughput.py on a tiny ML-100K setting (a few CPU steps)."""

import pytest
from hub_helpers import load_script, tiny_ml100k_tiger

SCRIPT = "benchmarks/train_throughput.py"


def _base_args(folder, data_dir) -> list[str]:
    """A tiny TIGER's tokenizer on ML-100K, a tiny model, batch 4, no DataLoader workers."""
    return [
        *("--tokenizer_name_or_path", str(folder), "--data_dir", str(data_dir), "--dataset", "ml-100k"),
        *("--batch_sizes", "4", "--d_model", "16", "--d_ff", "32", "--num_layers", "1"),
    ]


def test_throughput_table_on_cpu(shared_data_dir, tmp_path, capsys, monkeypatch):
    script = load_script(SCRIPT, monkeypatch)
    # as on a CPU with native bf16: the fp32 settings must stay fp32 (the training script would switch to bf16)
    monkeypatch.setenv("HF_TIGER_CPU_BF16", "1")
    base = _base_args(tiny_ml100k_tiger(tmp_path / "tiger"), shared_data_dir)
    settings = ["bare", "trainer_random", "trainer_grouped", "default", "user_sequences", "bf16_user_sequences"]
    rows = script.main([*base, "--steps", "4", "--skip", "1", "--settings", *settings])
    printed = capsys.readouterr().out
    assert [row["setting"] for row in rows] == settings
    for row in rows:
        assert row["examples_per_second"] > 0 and row["gflops"] > 0
    for row in rows[:4]:
        assert row["examples_timed"] == 3 * 4  # steps 1..4 of batch 4
    # user sequences: whole windows per step (ML-100K: ~10 targets each), every target counted as an example
    assert rows[4]["examples_timed"] > 3 and rows[4]["examples_per_step"] == rows[4]["examples_timed"] / 3
    assert [row["precision"] for row in rows] == ["fp32"] * 5 + ["bf16"]
    assert rows[5]["examples_timed"] == rows[4]["examples_timed"]  # the same windows, in bf16
    # random batches are padded to their longest history; grouped batches are not wider
    assert rows[2]["mean_width"] <= rows[1]["mean_width"]
    assert "| batch | setting | precision | examples/s | vs bare |" in printed and "| 4 | bare | fp32 |" in printed
    assert "matmul peak fp32" in printed and "CPU bf16:" in printed


def test_throughput_bad_settings_are_clear_errors(shared_data_dir, tmp_path, monkeypatch):
    script = load_script(SCRIPT, monkeypatch)
    base = _base_args(tiny_ml100k_tiger(tmp_path / "tiger"), shared_data_dir)
    with pytest.raises(ValueError, match=r"unknown settings \['fast'\]"):
        script.main([*base, "--settings", "fast"])
    with pytest.raises(ValueError, match=r"--steps \(2\) must exceed --skip \(5\)"):
        script.main([*base, "--steps", "2", "--skip", "5"])


def test_plain_dropout_swaps_tiger_dropout_back(monkeypatch, tmp_path):
    from torch import nn

    from hf_tiger import TigerForConditionalGeneration
    from hf_tiger.models.tiger.modeling_tiger import TigerDropout

    script = load_script(SCRIPT, monkeypatch)
    model = TigerForConditionalGeneration.from_pretrained(tiny_ml100k_tiger(tmp_path / "tiger"))
    assert any(isinstance(m, TigerDropout) for m in model.modules())
    script.plain_dropout_(model)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(type(m) is nn.Dropout for m in dropouts)
