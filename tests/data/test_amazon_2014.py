"""Raw Amazon 2014 reader (reviews_<Category>_5.json.gz + meta_<Category>.json.gz) on a handwritten fixture."""

import gzip
import shutil

import pytest

from hf_tiger.data import DataFormatError, load_items, load_sequences, load_user_sequences, read_amazon_2014
from hf_tiger.data import download as downloads

# Handwritten fixture: six reviewers with five reviews each (every product reviewed by exactly five of them),
# plus a reviewer with two reviews and one whose fifth product nobody else reviewed: both fall out of the
# 5-core (the second only after its rare product is removed). Ids follow the P5 numbering: users by first
# appearance in the file, items by first appearance along the users' time-ordered sequences.
EXPECTED_SEQUENCES = {
    1: [1, 2, 3, 4, 5],  # A3BOBREVIEWER, its lines are out of time order in the file
    2: [6, 2, 3, 4, 5],  # A1ANNREVIEWER, items 3 and 4 share a timestamp: file order
    3: [6, 1, 3, 4, 5],
    4: [6, 1, 2, 4, 5],
    5: [6, 1, 2, 3, 5],
    6: [6, 1, 2, 3, 4],
}
EXPECTED_ASINS = ["B000ABC002", "B000ABC003", "B000ABC004", "B000ABC005", "B000ABC006", "B000ABC001"]


def test_fixture_follows_p5_protocol(fixtures_dir, check_leave_one_out):
    data = read_amazon_2014(fixtures_dir / "amazon-2014", "Beauty")
    assert data.sequences == EXPECTED_SEQUENCES
    assert data.num_interactions == 30
    check_leave_one_out(load_sequences("amazon-2014/beauty", fixtures_dir), EXPECTED_SEQUENCES)

    catalogue = load_items("amazon-2014/Beauty", fixtures_dir)
    assert catalogue["item_id"] == [1, 2, 3, 4, 5, 6]
    assert catalogue["asin"] == EXPECTED_ASINS
    by_asin = dict(zip(catalogue["asin"], catalogue["text"]))
    assert by_asin["B000ABC001"] == (
        "title: Hydrating Facial Cleanser; brand: CeraVe; categories: Beauty, Skin Care, Face, Cleansers; price: 12.99"
    )
    # two category paths flattened without repeats; no price
    assert by_asin["B000ABC004"] == (
        "title: Precision Liquid Eyeliner; brand: Maybelline; categories: Beauty, Makeup, Eyes, Eyeliner"
    )
    assert by_asin["B000ABC006"].startswith("title: L'Oreal Paris Voluminous Mascara; brand: L'Oreal Paris")
    assert by_asin["B000ABC005"] == "categories: Beauty, Fragrance, Women"


def test_k_core_threshold_is_configurable(fixtures_dir):
    # without the 5-core, the rare product B000ZZZ002 (no meta record) is in the data: an error by default
    with pytest.raises(DataFormatError, match=r"line 22: item 8 has no entry"):
        read_amazon_2014(fixtures_dir / "amazon-2014", "Beauty", min_interactions=1)
    data = read_amazon_2014(
        fixtures_dir / "amazon-2014", "Beauty", min_interactions=1, missing_text="item_id"
    )
    assert len(data.sequences) == 8 and data.num_interactions == 37
    assert data.items[7] == {
        "item_id": 8,
        "text": "8",
        "asin": "B000ZZZ002",
        "title": "",
        "brand": "",
        "categories": [],
        "price": None,
    }


@pytest.fixture
def raw_copy(tmp_path, fixtures_dir):
    shutil.copytree(fixtures_dir / "amazon-2014", tmp_path / "amazon-2014")
    return tmp_path


def _rewrite_gz(path, edit):
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(edit(lines)) + "\n").encode()))


def test_missing_meta_file(raw_copy):
    (raw_copy / "amazon-2014" / "meta_Beauty.json.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"Amazon 2014 file not found: .*meta_Beauty.json.gz"):
        load_sequences("amazon-2014/Beauty", raw_copy)


def test_malformed_review_line(raw_copy):
    path = raw_copy / "amazon-2014" / "reviews_Beauty_5.json.gz"
    _rewrite_gz(path, lambda lines: lines[:3] + [lines[3].replace('"unixReviewTime"', '"time"')] + lines[4:])
    with pytest.raises(DataFormatError, match=r"reviews_Beauty_5.json.gz, line 4: expected an object with"):
        load_sequences("amazon-2014/Beauty", raw_copy)


def test_malformed_meta_line_of_a_needed_item(raw_copy):
    path = raw_copy / "amazon-2014" / "meta_Beauty.json.gz"
    _rewrite_gz(
        path, lambda lines: [line.replace("'Daily Moisturizing Lotion',", "'Daily") for line in lines]
    )
    with pytest.raises(
        DataFormatError, match=r"meta_Beauty.json.gz, line 5: not a Python-literal or JSON dict"
    ):
        load_items("amazon-2014/Beauty", raw_copy)


def test_meta_is_never_evaluated_as_code(raw_copy):
    path = raw_copy / "amazon-2014" / "meta_Beauty.json.gz"
    payload = "{'asin': 'B000ABC003', 'title': __import__('os').getcwd()}"
    _rewrite_gz(path, lambda lines: [payload if "B000ABC003" in line[:30] else line for line in lines])
    with pytest.raises(DataFormatError, match="line 8: not a Python-literal"):
        load_items("amazon-2014/Beauty", raw_copy)


def test_item_without_meta(raw_copy, caplog):
    path = raw_copy / "amazon-2014" / "meta_Beauty.json.gz"
    _rewrite_gz(path, lambda lines: [line for line in lines if not line.startswith("{'asin': 'B000ABC004'")])
    # B000ABC004 is first reviewed on line 1 of the reviews file; it is item 3
    with pytest.raises(
        DataFormatError, match=r"reviews_Beauty_5.json.gz, line 1: item 3 has no entry in .*meta_Beauty"
    ):
        load_sequences("amazon-2014/Beauty", raw_copy)
    with caplog.at_level("WARNING"):
        catalogue = load_items("amazon-2014/Beauty", raw_copy, missing_text="item_id")
    assert "1 interacted item(s) have no text" in caplog.text
    assert catalogue[2]["asin"] == "B000ABC004" and catalogue[2]["text"] == "3"


def test_download_from_official_url_layout(tmp_path, fixtures_dir, monkeypatch):
    monkeypatch.setattr(downloads, "AMAZON_2014_BASE_URL", (fixtures_dir / "amazon-2014").as_uri() + "/")
    monkeypatch.delenv("HF_TIGER_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_TIGER_CACHE", str(tmp_path))
    assert load_user_sequences("amazon-2014/beauty") == EXPECTED_SEQUENCES
    assert sorted(p.name for p in (tmp_path / "data" / "amazon-2014").iterdir()) == [
        "meta_Beauty.json.gz",
        "reviews_Beauty_5.json.gz",
    ]


def test_download_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(downloads, "AMAZON_2014_BASE_URL", (tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(OSError, match="could not download"):
        load_sequences("amazon-2014/Beauty", tmp_path / "data", download=True)
    assert list((tmp_path / "data" / "amazon-2014").iterdir()) == []
