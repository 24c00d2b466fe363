"""Data set names, data directory resolution and the in-process cache (hf_tiger.data.loading)."""

import os
import shutil

import pytest

from hf_tiger.data import load_interaction_data, load_user_sequences, resolve_data_dir


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TIGER_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("HF_TIGER_CACHE", str(tmp_path / "cache"))
    assert resolve_data_dir(tmp_path / "arg") == (tmp_path / "arg", False)
    assert resolve_data_dir() == (tmp_path / "env", False)
    monkeypatch.delenv("HF_TIGER_DATA_DIR")
    assert resolve_data_dir() == (tmp_path / "cache" / "data", True)


def test_env_data_dir_is_used(fixtures_dir, monkeypatch):
    monkeypatch.setenv("HF_TIGER_DATA_DIR", str(fixtures_dir))
    assert load_user_sequences("amazon-p5/tiny")[1] == [1, 2, 3, 4, 5]


def test_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'beauty'.*amazon-p5/<folder>"):
        load_user_sequences("beauty", tmp_path)


def test_folder_format_detection(fixtures_dir):
    for folder in ("amazon-p5/tiny", "ml-1m", "generic", "amazon-2014"):
        data = load_interaction_data(str(fixtures_dir / folder))
        assert data.sequences and data.items


def test_cache_is_invalidated_when_a_file_changes(tmp_path, fixtures_dir):
    shutil.copytree(fixtures_dir / "amazon-p5" / "tiny", tmp_path / "amazon-p5" / "tiny")
    first = load_interaction_data("amazon-p5/tiny", tmp_path)
    assert load_interaction_data("amazon-p5/tiny", tmp_path) is first
    path = tmp_path / "amazon-p5" / "tiny" / "sequential_data.txt"
    path.write_text(path.read_text() + "4 1 2 3\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    second = load_interaction_data("amazon-p5/tiny", tmp_path)
    assert second is not first and second.sequences[4] == [1, 2, 3]
