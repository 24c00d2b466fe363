"""scripts/benchmarks/train_throughput.py on a tiny ML-100K setting (a few CPU steps)."""

import pytest
from hub_helpers import load_script, tiny_ml100k_tiger

SCRIPT = "benchmarks/train_throughput.py"


def _base_args(folder, data_dir) -> list[str]:
    """A tiny TIGER's tokenizer on ML-100K, batch 4, no DataLoader workers."""
    return [
        *("--tokenizer_name_or_path", str(folder), "--data_dir", str(data_dir), "--dataset", "ml-100k"),
        *("--batch_sizes", "4", "--dataloader_num_workers", "0"),
    ]


@pytest.mark.parametrize("strategy", ["random", "group_by_length"])
def test_throughput_table_on_cpu(shared_data_dir, tmp_path, capsys, monkeypatch, strategy):
    script = load_script(SCRIPT, monkeypatch)
    base = _base_args(tiny_ml100k_tiger(tmp_path / "tiger"), shared_data_dir)
    rows = script.main(
        [*base, "--steps", "4", "--skip", "1", "--compile_modes", "eager", "--train_sampling_strategy", strategy]
    )
    printed = capsys.readouterr().out
    assert [row["batch_size"] for row in rows] == [4] and rows[0]["eager"] > 0
    assert f"train_sampling_strategy={strategy}" in printed
    assert "| 4 | " in printed and "| batch | eager steps/s |" in printed


def test_throughput_bad_settings_are_clear_errors(shared_data_dir, tmp_path, monkeypatch):
    script = load_script(SCRIPT, monkeypatch)
    base = _base_args(tiny_ml100k_tiger(tmp_path / "tiger"), shared_data_dir)
    with pytest.raises(ValueError, match="compile_modes takes 'eager' and 'compile'"):
        script.main([*base, "--compile_modes", "fast"])
    with pytest.raises(ValueError, match=r"--steps \(2\) must exceed --skip \(5\)"):
        script.main([*base, "--steps", "2", "--skip", "5", "--compile_modes", "eager"])
