"""MovieLens readers: ml-100k on the real files, ml-1m on a handwritten fixture, GroupLens zip download."""

import shutil
import zipfile

import pytest

from hf_tiger.data import (
    DataFormatError,
    dataset_statistics,
    load_items,
    load_sequences,
    load_user_sequences,
)
from hf_tiger.data import download as downloads

ML_1M_SEQUENCES = {
    1: [3408, 1193, 914, 661, 1],
    2: [73, 1193, 3408],  # 73 and 1193 share a timestamp: file order
    3: [1, 661, 48, 914],
    4: [1193, 73, 48],
}


def test_ml_100k_real_statistics(shared_data_dir, check_leave_one_out):
    stats = dataset_statistics("ml-100k", shared_data_dir)
    assert (stats["num_users"], stats["num_items"], stats["num_interactions"]) == (943, 1_682, 100_000)
    assert stats["min_sequence_length"] >= 20
    sequences = load_user_sequences("ml-100k", shared_data_dir)
    check_leave_one_out(load_sequences("ml-100k", shared_data_dir), sequences)
    # sequences follow the timestamps of u.data
    times = {}
    for line in (shared_data_dir / "ml-100k" / "u.data").read_text().splitlines():
        user, item, _, timestamp = map(int, line.split("\t"))
        times[(user, item)] = timestamp
    for user in (1, 500, 943):
        stamps = [times[(user, item)] for item in sequences[user]]
        assert stamps == sorted(stamps)


def test_ml_100k_item_text(shared_data_dir):
    catalogue = load_items("ml-100k", shared_data_dir)
    assert catalogue.num_rows == 1_682 and catalogue["item_id"] == list(range(1, 1_683))
    assert catalogue[0]["text"] == "Toy Story (1995); Animation, Children's, Comedy"
    assert catalogue[0]["genres"] == ["Animation", "Children's", "Comedy"]
    assert all(catalogue["text"])


def test_ml_1m_fixture(fixtures_dir, check_leave_one_out):
    assert load_user_sequences("ml-1m", fixtures_dir) == ML_1M_SEQUENCES
    splits = load_sequences("ml-1m", fixtures_dir)
    check_leave_one_out(splits, ML_1M_SEQUENCES)
    assert splits["test"][1] == {"user_id": 2, "history": [73, 1193], "target": 3408}
    catalogue = load_items("ml-1m", fixtures_dir)
    # only rated movies form the catalogue (2355 has no rating); Latin-1 titles decode correctly
    assert catalogue["item_id"] == [1, 48, 73, 661, 914, 1193, 3408]
    assert catalogue[2]["text"] == "Misérables, Les (1995); Drama, Musical"
    assert catalogue[2]["genres"] == ["Drama", "Musical"]


@pytest.fixture
def ml_copy(tmp_path, fixtures_dir):
    shutil.copytree(fixtures_dir / "ml-1m", tmp_path / "ml-1m")
    return tmp_path


def test_ml_1m_missing_file(ml_copy):
    (ml_copy / "ml-1m" / "movies.dat").unlink()
    with pytest.raises(FileNotFoundError, match=r"movies.dat .*download=True"):
        load_sequences("ml-1m", ml_copy)


def test_ml_1m_malformed_rating_line(ml_copy):
    path = ml_copy / "ml-1m" / "ratings.dat"
    lines = path.read_text().splitlines()
    lines[6] = "2::1193::5"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataFormatError, match=r"ratings.dat, line 7: expected 'UserID::MovieID::Rating::Timestamp'"
    ):
        load_sequences("ml-1m", ml_copy)


def test_ml_1m_rated_movie_without_text(ml_copy, caplog):
    path = ml_copy / "ml-1m" / "movies.dat"
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join(line for line in lines if not line.startswith(b"661::")) + b"\n")
    # movie 661 is first rated on line 2 of ratings.dat
    with pytest.raises(DataFormatError, match=r"ratings.dat, line 2: item 661 has no entry in .*movies.dat"):
        load_items("ml-1m", ml_copy)
    with caplog.at_level("WARNING"):
        catalogue = load_items("ml-1m", ml_copy, missing_text="item_id")
    assert "have no text" in caplog.text
    assert catalogue[3] == {"item_id": 661, "text": "661", "title": None, "genres": None}


def test_ml_100k_malformed_item_line(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t1\t5\t881250949\n1\t2\t3\t881250950\n1\t1\t4\t881250951\n")
    flags = "|".join(["0"] * 19)
    (folder / "u.item").write_bytes(
        f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags}\n2|Broken|line\n".encode("latin-1")
    )
    with pytest.raises(DataFormatError, match=r"u.item, line 2: expected 'id\|title"):
        load_items("ml-100k", tmp_path)


def _zip_folder(source, archive, folder_name):
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.iterdir()):
            zf.write(path, f"{folder_name}/{path.name}")
    return archive


def test_download_into_default_cache(tmp_path, fixtures_dir, monkeypatch, check_leave_one_out):
    archive = _zip_folder(fixtures_dir / "ml-1m", tmp_path / "ml-1m.zip", "ml-1m")
    monkeypatch.setitem(downloads.GROUPLENS_URLS, "ml-1m", archive.as_uri())
    monkeypatch.delenv("HF_TIGER_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_TIGER_CACHE", str(tmp_path / "cache"))
    splits = load_sequences("ml-1m")  # no data dir: downloaded into the cache folder
    check_leave_one_out(splits, ML_1M_SEQUENCES)
    assert (tmp_path / "cache" / "data" / "ml-1m" / "ratings.dat").is_file()
    # a folder the user named is never written to unless asked
    with pytest.raises(FileNotFoundError, match="pass download=True"):
        load_sequences("ml-1m", tmp_path / "mine")
    assert load_user_sequences("ml-1m", tmp_path / "mine", download=True) == ML_1M_SEQUENCES


def test_download_rejects_unexpected_archive_members(tmp_path, monkeypatch):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "1::1::5::1\n")
        zf.writestr("../escape.txt", "x")
    monkeypatch.setitem(downloads.GROUPLENS_URLS, "ml-1m", archive.as_uri())
    with pytest.raises(OSError, match="unexpected archive member"):
        load_sequences("ml-1m", tmp_path / "data", download=True)
    assert not (tmp_path / "data" / "ml-1m").exists() and not (tmp_path / "escape.txt").exists()
