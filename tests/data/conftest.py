"""Helpers for the data tests: fixture paths and the leave-one-out protocol check."""

import shutil
from collections import defaultdict
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir(tmp_path_factory) -> Path:
    """A copy of `tests/fixtures`: small handwritten files in the official formats.

    Files named like the shared real data (`sequential_data.txt`, `item_text.jsonl`) are kept in git with an
    `.in` suffix, so the repository never holds files that look like copies of `../shared/data`; the copy
    gets their real names."""
    root = tmp_path_factory.mktemp("fixtures")
    shutil.copytree(FIXTURES, root, dirs_exist_ok=True)
    for template in root.rglob("*.in"):
        template.rename(template.with_suffix(""))
    return root


def _check_leave_one_out(splits, sequences, max_history=20):
    """Assert that `splits` is exactly the P5 / TIGER leave-one-out protocol applied to `sequences`."""
    assert set(splits) == {"train", "validation", "test"}
    for split in splits.values():
        assert split.column_names == ["user_id", "history", "target"]
    train, validation, test = (splits[name].to_dict() for name in ("train", "validation", "test"))

    # one validation row and one test row per user, in the order of the source
    assert validation["user_id"] == list(sequences) == test["user_id"]
    for user, history, target in zip(test["user_id"], test["history"], test["target"]):
        s = sequences[user]
        assert target == s[-1] and history == s[:-1][-max_history:]
    for user, history, target in zip(validation["user_id"], validation["history"], validation["target"]):
        s = sequences[user]
        assert target == s[-2] and history == s[:-2][-max_history:]

    # train: every prefix of s[:-2] predicting its next item, in order
    rows = defaultdict(list)
    for user, history, target in zip(train["user_id"], train["history"], train["target"]):
        rows[user].append((history, target))
    assert set(rows) <= set(sequences)
    for user, s in sequences.items():
        user_rows = rows.get(user, [])
        assert [target for _, target in user_rows] == s[1:-2]
        for length, (history, _) in enumerate(user_rows, 1):
            assert history == s[:length][-max_history:]

    # no leakage: the test target is never a train/validation target or in their histories (users whose
    # last item also occurs earlier in their sequence -- repeat consumption -- are checked by position above)
    test_target = dict(zip(test["user_id"], test["target"]))
    for split in (train, validation):
        for user, history, target in zip(split["user_id"], split["history"], split["target"]):
            if sequences[user].count(test_target[user]) == 1:
                assert target != test_target[user] and test_target[user] not in history
    for split in (train, validation, test):
        assert all(1 <= len(history) <= max_history for history in split["history"])


@pytest.fixture(scope="session")
def check_leave_one_out():
    """The protocol check: `check_leave_one_out(splits, sequences, max_history=20)`."""
    return _check_leave_one_out
