"""scripts/benchmarks/train_throughput.py on a tiny ML-100K setting (a few CPU steps)."""

import importlib.util
import sys
from pathlib import Path

import pytest
from hub_helpers import tiny_ml100k_tiger

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load_script(monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "train_throughput_script", REPO_ROOT / "scripts" / "benchmarks" / "train_throughput.py"
    )
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, script)  # dataclasses look their module up
    spec.loader.exec_module(script)
    return script


@pytest.mark.parametrize("strategy", ["random", "group_by_length"])
def test_throughput_table_on_cpu(shared_data_dir, tmp_path, capsys, monkeypatch, strategy):
    script = _load_script(monkeypatch)
    folder = tiny_ml100k_tiger(tmp_path / "tiger")
    rows = script.main(
        [
            *(
                "--tokenizer_name_or_path",
                str(folder),
                "--data_dir",
                str(shared_data_dir),
                "--dataset",
                "ml-100k",
            ),
            *("--batch_sizes", "4", "--steps", "4", "--skip", "1", "--compile_modes", "eager"),
            *("--dataloader_num_workers", "0", "--train_sampling_strategy", strategy),
        ]
    )
    printed = capsys.readouterr().out
    assert [row["batch_size"] for row in rows] == [4] and rows[0]["eager"] > 0
    assert f"train_sampling_strategy={strategy}" in printed
    assert "| 4 | " in printed and "| batch | eager steps/s |" in printed


def test_throughput_bad_settings_are_clear_errors(shared_data_dir, tmp_path, monkeypatch):
    script = _load_script(monkeypatch)
    folder = tiny_ml100k_tiger(tmp_path / "tiger")
    base = [
        "--tokenizer_name_or_path",
        str(folder),
        "--data_dir",
        str(shared_data_dir),
        "--dataset",
        "ml-100k",
    ]
    base += ["--batch_sizes", "4", "--dataloader_num_workers", "0"]
    with pytest.raises(ValueError, match="compile_modes takes 'eager' and 'compile'"):
        script.main([*base, "--compile_modes", "fast"])
    with pytest.raises(ValueError, match=r"--steps \(2\) must exceed --skip \(5\)"):
        script.main([*base, "--steps", "2", "--skip", "5", "--compile_modes", "eager"])
