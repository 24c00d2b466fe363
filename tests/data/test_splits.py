"""Leave-one-out splitting (hf_tiger.data.splits)."""

import logging

import pytest

from hf_tiger.data import leave_one_out


def test_protocol_rows_exactly():
    splits = leave_one_out({7: [10, 11, 12, 13, 14]}, max_history=20)
    # s[:-2] = [10, 11, 12]: [10] -> 11, [10, 11] -> 12
    assert splits["train"].to_dict() == {"user_id": [7, 7], "history": [[10], [10, 11]], "target": [11, 12]}
    assert splits["validation"].to_dict() == {"user_id": [7], "history": [[10, 11, 12]], "target": [13]}
    assert splits["test"].to_dict() == {"user_id": [7], "history": [[10, 11, 12, 13]], "target": [14]}


def test_histories_keep_most_recent_items(check_leave_one_out):
    sequences = {1: list(range(100, 130)), 2: [5, 6, 7], 3: [9, 8, 7, 6]}
    splits = leave_one_out(sequences, max_history=4)
    check_leave_one_out(splits, sequences, max_history=4)
    assert splits["test"][0]["history"] == [125, 126, 127, 128]
    # a user of length 3 has no train row, but a validation and a test row
    assert 2 not in splits["train"]["user_id"]
    assert splits["validation"][1] == {"user_id": 2, "history": [5], "target": 6}


def test_id_types_are_kept():
    splits = leave_one_out({"u1": ["a", "b", "c", "d"], "u2": ["c", "a", "b"]})
    assert splits["train"].features["user_id"].dtype == "string"
    assert splits["test"]["target"] == ["d", "b"]
    ints = leave_one_out({1: [3, 4, 5]})
    assert ints["test"].features["target"].dtype == "int64"
    with pytest.raises(TypeError, match="item_id values must be all int or all str"):
        leave_one_out({1: [3, "4", 5]})


def test_short_sequences_raise_or_drop_explicitly(caplog):
    sequences = {"a": [1, 2, 3, 4], "b": [1, 2], "c": [5]}
    with pytest.raises(
        ValueError, match=r"2 user\(s\) have fewer than 3 interactions \(e.g. user 'b' with 2\)"
    ):
        leave_one_out(sequences)
    with caplog.at_level(logging.WARNING):
        splits = leave_one_out(sequences, short_sequences="drop")
    assert "Dropping 2 of 3 users" in caplog.text
    assert splits["test"]["user_id"] == ["a"] and splits["validation"]["user_id"] == ["a"]


@pytest.mark.parametrize("kwargs", [{"max_history": 0}, {"short_sequences": "skip"}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        leave_one_out({1: [1, 2, 3]}, **kwargs)
