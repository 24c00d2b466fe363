"""Generic interactions CSV/JSONL + items JSONL reader."""

import json
import shutil

import pytest

from hf_tiger.data import DataFormatError, load_items, load_sequences, load_user_sequences, read_interactions

FIXTURE_SEQUENCES = {
    "alice": ["sku-1", "sku-3", "sku-2", "sku-4"],  # ISO-8601 timestamps, with and without offset
    "bob": ["sku-1", "sku-2", "sku-4"],  # Unix seconds
    "carol": ["sku-1", "sku-4", "sku-5"],  # sku-4 and sku-5 share a timestamp: file order
}


def test_csv_fixture(fixtures_dir, check_leave_one_out):
    folder = fixtures_dir / "generic"
    assert load_user_sequences("generic", folder) == FIXTURE_SEQUENCES
    splits = load_sequences("generic", folder)
    check_leave_one_out(splits, FIXTURE_SEQUENCES)
    assert splits["train"].features["user_id"].dtype == "string"

    catalogue = load_items(str(folder))  # the folder path as name
    assert catalogue["item_id"] == ["sku-1", "sku-2", "sku-3", "sku-4", "sku-5", "sku-6"]  # cold sku-6 kept
    assert catalogue[0]["text"] == "title: Trail running shoes; brand: Salomon; categories: Sports, Running"
    assert catalogue[1]["text"] == "Waterproof hiking jacket"
    assert (
        catalogue[2]["text"] == "title: Insulated water bottle; price: 24.5" and catalogue[2]["price"] == 24.5
    )


def test_jsonl_int_ids_without_timestamps(tmp_path):
    rows = [(10, 3), (11, 1), (10, 1), (10, 2), (11, 2), (11, 3)]
    (tmp_path / "interactions.jsonl").write_text(
        "".join(json.dumps({"user_id": u, "item_id": i}) + "\n" for u, i in rows)
    )
    (tmp_path / "items.jsonl").write_text(
        "".join(json.dumps({"item_id": i, "text": f"item {i}"}) + "\n" for i in (1, 2, 3))
    )
    data = read_interactions(tmp_path / "interactions.jsonl", tmp_path / "items.jsonl")
    assert data.sequences == {10: [3, 1, 2], 11: [1, 2, 3]}  # no timestamps: file order
    splits = load_sequences("generic", tmp_path)
    assert splits["test"].features["target"].dtype == "int64"
    assert read_interactions(
        tmp_path / "interactions.jsonl", tmp_path / "items.jsonl", id_type="str"
    ).sequences == {
        "10": ["3", "1", "2"],
        "11": ["1", "2", "3"],
    }


def test_auto_id_type_reads_decimal_csv_ids_as_ints(tmp_path):
    (tmp_path / "interactions.csv").write_text("user_id,item_id\n1,7\n1,8\n1,9\n")
    (tmp_path / "items.jsonl").write_text(
        '{"item_id": 7, "text": "a"}\n{"item_id": "8", "text": "b"}\n{"item_id": 9, "text": "c"}\n'
    )
    assert load_user_sequences("generic", tmp_path) == {1: [7, 8, 9]}
    (tmp_path / "interactions.csv").write_text("user_id,item_id\n1,7\n1,08\n1,9\n")
    with pytest.raises(DataFormatError, match=r"interactions.csv, line 3: item_id '08' is not an integer"):
        load_user_sequences("generic", tmp_path, id_type="int")


@pytest.fixture
def generic_copy(tmp_path, fixtures_dir):
    shutil.copytree(fixtures_dir / "generic", tmp_path / "generic")
    return tmp_path / "generic"


def test_missing_items_file(generic_copy):
    (generic_copy / "items.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"items file not found: .*items.jsonl"):
        load_sequences("generic", generic_copy)


def test_malformed_csv_line(generic_copy):
    path = generic_copy / "interactions.csv"
    lines = path.read_text().splitlines()
    lines[5] = "bob,sku-2"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"interactions.csv, line 6: expected 4 fields"):
        load_sequences("generic", generic_copy)


def test_bad_timestamp(generic_copy):
    path = generic_copy / "interactions.csv"
    path.write_text(path.read_text().replace("1709366400", "yesterday"))
    with pytest.raises(DataFormatError, match=r"interactions.csv, line 6: timestamp 'yesterday'"):
        load_sequences("generic", generic_copy)


def test_malformed_items_line_and_duplicates(generic_copy):
    path = generic_copy / "items.jsonl"
    original = path.read_text()
    path.write_text(original + '{"item_id": "sku-2", "text": "again"}\n')
    with pytest.raises(DataFormatError, match=r"items.jsonl, line 7: duplicate item_id 'sku-2'"):
        load_items("generic", generic_copy)
    path.write_text(original.replace('{"item_id": "sku-5"', '{"item": "sku-5"'))
    with pytest.raises(
        DataFormatError, match=r"items.jsonl, line 5: expected a JSON object with an 'item_id'"
    ):
        load_items("generic", generic_copy)


def test_interaction_with_unknown_item(generic_copy, caplog):
    path = generic_copy / "interactions.csv"
    path.write_text(path.read_text() + "carol,sku-99,200,1\n")
    with pytest.raises(
        DataFormatError, match=r"interactions.csv, line 12: item 'sku-99' has no entry in .*items.jsonl"
    ):
        load_sequences("generic", generic_copy)
    with caplog.at_level("WARNING"):
        catalogue = load_items("generic", generic_copy, missing_text="item_id")
    assert "have no text" in caplog.text and catalogue["text"][-1] == "sku-99"


def test_item_with_empty_text(generic_copy):
    path = generic_copy / "items.jsonl"
    path.write_text(path.read_text().replace('"text": "Waterproof hiking jacket"', '"text": "  "'))
    # sku-2 is first used on line 5 of interactions.csv
    with pytest.raises(
        DataFormatError, match=r"interactions.csv, line 5: item 'sku-2' has an entry with no text"
    ):
        load_items("generic", generic_copy)


def test_short_users_are_an_explicit_choice(generic_copy):
    path = generic_copy / "interactions.csv"
    path.write_text(path.read_text() + "dave,sku-1,1,1\n")
    with pytest.raises(ValueError, match="user 'dave' with 1"):
        load_sequences("generic", generic_copy)
    splits = load_sequences("generic", generic_copy, short_sequences="drop")
    assert "dave" not in splits["test"]["user_id"]
