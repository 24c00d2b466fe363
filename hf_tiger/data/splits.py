"""Leave-one-out splits of user sequences (the P5 / TIGER protocol) as a `datasets.DatasetDict`."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from datasets import Dataset, DatasetDict, DatasetInfo, Features, List, NamedSplit, Value
from datasets.table import InMemoryTable
from transformers.utils import logging

logger = logging.get_logger(__name__)

SHORT_SEQUENCE_POLICIES = ("raise", "drop")
# A user needs a test target, a validation target and at least one item of history before both.
MIN_SEQUENCE_LENGTH = 3


def _id_feature(values, column: str) -> Value:
    kinds = {type(value) for value in values}
    if kinds <= {int}:
        return Value("int64")
    if kinds <= {str}:
        return Value("string")
    raise TypeError(f"{column} values must be all int or all str, got {sorted(k.__name__ for k in kinds)}")


def leave_one_out(
    sequences: dict[Any, list[Any]], max_history: int = 20, *, short_sequences: str = "raise"
) -> DatasetDict:
    """Split time-ordered user sequences into train / validation / test, leave-one-out per user.

    For a user's sequence `s` (oldest first):
    - test: history `s[:-1]`, target `s[-1]`;
    - validation: history `s[:-2]`, target `s[-2]`;
    - train: every prefix of `s[:-2]` predicting its next item within `s[:-2]`, i.e. for `s[:-2] = [a, b, c]`
      the rows `[a] -> b` and `[a, b] -> c`.
    Every history keeps its last `max_history` items. So the last item is only ever a test target and the
    second-to-last only a validation target or part of the test history.

    Args:
        sequences (`dict`): user id -> item ids in time order; ids all int or all str.
        max_history (`int`, defaults to 20): history length cap (most recent items kept).
        short_sequences (`str`, defaults to `"raise"`): users with fewer than 3 interactions cannot get a
            validation and a test row with a non-empty history. `"raise"`: raise `ValueError` naming one
            such user; `"drop"`: leave them out of all splits (logged as a warning with their count).
            5-core Amazon data and MovieLens (>= 20 ratings per user) have none.

    Returns:
        `datasets.DatasetDict` with splits `train`, `validation`, `test` and columns `user_id`,
        `history` (list of item ids, length 1..max_history), `target` (item id). Validation and test
        have exactly one row per user, in the order of `sequences`.
    """
    if max_history < 1:
        raise ValueError(f"max_history must be >= 1, got {max_history}")
    if short_sequences not in SHORT_SEQUENCE_POLICIES:
        raise ValueError(f"short_sequences must be one of {SHORT_SEQUENCE_POLICIES}, got {short_sequences!r}")
    short = [user for user, sequence in sequences.items() if len(sequence) < MIN_SEQUENCE_LENGTH]
    if short:
        if short_sequences == "raise":
            user = short[0]
            raise ValueError(
                f"{len(short)} user(s) have fewer than {MIN_SEQUENCE_LENGTH} interactions (e.g. user {user!r} "
                f"with {len(sequences[user])}), too few for leave-one-out; pass short_sequences='drop' to "
                "leave them out"
            )
        logger.warning(
            f"Dropping {len(short)} of {len(sequences)} users with fewer than {MIN_SEQUENCE_LENGTH} "
            "interactions (short_sequences='drop')"
        )
        short_set = set(short)
        sequences = {user: sequence for user, sequence in sequences.items() if user not in short_set}
    if not sequences:
        raise ValueError("no user sequences to split")

    columns: dict[str, dict[str, list]] = {
        split: {"user_id": [], "history": [], "target": []} for split in ("train", "validation", "test")
    }
    train, validation, test = columns["train"], columns["validation"], columns["test"]
    for user, sequence in sequences.items():
        n = len(sequence)
        for t in range(1, n - 2):
            train["user_id"].append(user)
            train["history"].append(sequence[max(0, t - max_history) : t])
            train["target"].append(sequence[t])
        validation["user_id"].append(user)
        validation["history"].append(sequence[max(0, n - 2 - max_history) : n - 2])
        validation["target"].append(sequence[n - 2])
        test["user_id"].append(user)
        test["history"].append(sequence[max(0, n - 1 - max_history) : n - 1])
        test["target"].append(sequence[n - 1])

    user_feature = _id_feature(sequences.keys(), "user_id")
    item_feature = _id_feature({item for sequence in sequences.values() for item in sequence}, "item_id")
    features = Features({"user_id": user_feature, "history": List(item_feature), "target": item_feature})
    schema = features.arrow_schema
    # Arrow's C conversion of the Python lists; `Dataset.from_dict` would re-encode every row in Python
    # (~10x slower on Beauty's 131k train rows).
    return DatasetDict(
        {
            split: Dataset(
                InMemoryTable(pa.Table.from_pydict(data, schema=schema)),
                info=DatasetInfo(features=features),
                split=NamedSplit(split),
            )
            for split, data in columns.items()
        }
    )
