"""P5-format readers on the real Amazon splits (../shared/data) and on a tiny handwritten folder."""

import shutil

import pytest

from hf_tiger.data import DataFormatError, dataset_statistics, load_items, load_sequences, load_user_sequences


@pytest.mark.parametrize(
    "name, users, items, interactions",
    [("amazon-p5/beauty", 22_363, 12_101, 198_502), ("amazon-p5/sports", 35_598, 18_357, 296_337)],
)
def test_real_statistics_and_protocol(shared_data_dir, check_leave_one_out, name, users, items, interactions):
    stats = dataset_statistics(name, shared_data_dir)
    assert stats["num_users"] == users
    assert stats["num_items"] == stats["num_interacted_items"] == items
    assert stats["num_interactions"] == interactions
    assert stats["validation_rows"] == stats["test_rows"] == users
    assert stats["train_rows"] == interactions - 3 * users  # every user: n - 3 train rows

    sequences = load_user_sequences(name, shared_data_dir)
    splits = load_sequences(name, shared_data_dir)
    check_leave_one_out(splits, sequences)
    assert max(len(h) for h in splits["test"]["history"]) == 20  # long users are truncated
    assert splits["train"].features["target"].dtype == "int64"

    catalogue = load_items(name, shared_data_dir)
    assert catalogue["item_id"] == list(range(1, items + 1))
    assert all(catalogue["text"])
    assert {"asin", "title_keywords", "attributes"} <= set(catalogue.column_names)


def test_beauty_item_text(shared_data_dir):
    catalogue = load_items("amazon-p5/beauty", shared_data_dir)
    assert catalogue[0]["text"] == "nail lacquer simmer and shimmer; OPI, Makeup, Nails, Nail Polish"
    assert catalogue[0]["asin"] == "B004756YJA"
    # item 10205 has no title keywords: its text is its attributes, without a dangling separator
    assert catalogue[10204]["text"] == "KONAD Nail Art, Tools & Accessories, Nail Tools, Nail Art Equipment"


def test_tiny_folder(fixtures_dir, check_leave_one_out):
    folder = fixtures_dir / "amazon-p5" / "tiny"
    splits = load_sequences(str(folder))  # a folder path works as a name
    sequences = {1: [1, 2, 3, 4, 5], 2: [2, 3, 6, 4], 3: [5, 1, 6, 2, 3, 4]}
    check_leave_one_out(splits, sequences)
    catalogue = load_items("amazon-p5/tiny", fixtures_dir)
    assert catalogue["text"][2] == "vitamin c serum"
    assert catalogue["text"][3] == "Unknown, Tools & Accessories"


@pytest.fixture
def tiny_copy(tmp_path, fixtures_dir):
    folder = tmp_path / "amazon-p5" / "tiny"
    shutil.copytree(fixtures_dir / "amazon-p5" / "tiny", folder)
    return folder


def test_missing_file(tiny_copy):
    (tiny_copy / "item_text.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"P5 item text file not found: .*item_text.jsonl"):
        load_sequences("amazon-p5/tiny", tiny_copy.parents[1])


def test_missing_folder_names_alternative(tmp_path):
    with pytest.raises(FileNotFoundError, match="amazon-2014/<Category>"):
        load_items("amazon-p5/toys", tmp_path)


def test_malformed_sequence_line(tiny_copy):
    path = tiny_copy / "sequential_data.txt"
    path.write_text("1 1 2 3\n2 4 x 5\n")
    with pytest.raises(
        DataFormatError, match=r"sequential_data.txt, line 2: expected 'user_id item_id"
    ) as err:
        load_sequences("amazon-p5/tiny", tiny_copy.parents[1])
    assert err.value.line == 2 and err.value.path == path


def test_malformed_item_text_line(tiny_copy):
    path = tiny_copy / "item_text.jsonl"
    lines = path.read_text().splitlines()
    lines[4] = lines[4][:-1]  # truncated JSON on line 5
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"item_text.jsonl, line 5: invalid JSON"):
        load_items("amazon-p5/tiny", tiny_copy.parents[1])


def test_item_without_text_raises_or_falls_back(tiny_copy, caplog):
    path = tiny_copy / "item_text.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line for line in lines if '"item_id": 6' not in line) + "\n")
    # item 6 first occurs on line 2 of sequential_data.txt
    with pytest.raises(
        DataFormatError, match=r"sequential_data.txt, line 2: item 6 has no entry in .*item_text"
    ):
        load_sequences("amazon-p5/tiny", tiny_copy.parents[1])
    with caplog.at_level("WARNING"):
        catalogue = load_items("amazon-p5/tiny", tiny_copy.parents[1], missing_text="item_id")
    assert "1 interacted item(s) have no text" in caplog.text
    assert catalogue["item_id"] == [1, 2, 3, 4, 5, 6] and catalogue["text"][5] == "6"
