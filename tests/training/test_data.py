"""Tokenized datasets (cached datasets.map) and the collator."""

import torch

from hf_tiger.training import TigerDataCollator, encode_examples, tokenize_split


def test_encoding_matches_the_tokenizer(ml100k, tiny_tokenizer):
    sequences, _ = ml100k
    rows = sequences["train"].select(range(5))
    encoded = encode_examples(rows[:], tiny_tokenizer)
    for i in range(5):
        history, user, target = rows[i]["history"], rows[i]["user_id"], rows[i]["target"]
        assert encoded["input_ids"][i] == tiny_tokenizer.encode_history(history, user_id=user)
        assert encoded["input_ids"][i][0] == tiny_tokenizer.user_token_id(user)
        assert encoded["input_ids"][i][-1] == tiny_tokenizer.eos_token_id
        assert encoded["labels"][i] == tiny_tokenizer.item_token_ids(target)
        assert len(encoded["labels"][i]) == tiny_tokenizer.num_levels
    without_users = encode_examples(rows[:], tiny_tokenizer, use_user_tokens=False)
    assert without_users["input_ids"][0] == encoded["input_ids"][0][1:]


def test_tokenized_split_is_cached(ml100k, tiny_tokenizer, tmp_path):
    sequences, _ = ml100k
    split = sequences["validation"].select(range(50))
    first = tokenize_split(split, tiny_tokenizer, cache_dir=tmp_path, split_name="validation")
    files = sorted(tmp_path.glob("*.arrow"))
    assert len(files) == 1 and first.column_names == ["input_ids", "labels"]
    stamp = files[0].stat().st_mtime_ns
    second = tokenize_split(split, tiny_tokenizer, cache_dir=tmp_path, split_name="validation")
    assert files[0].stat().st_mtime_ns == stamp  # loaded, not rewritten
    assert second.cache_files[0]["filename"] == str(files[0])
    assert second["input_ids"] == first["input_ids"]
    # Other settings or other data get their own cache file.
    tokenize_split(split, tiny_tokenizer, use_user_tokens=False, cache_dir=tmp_path, split_name="validation")
    tokenize_split(split.select(range(10)), tiny_tokenizer, cache_dir=tmp_path, split_name="validation")
    assert len(list(tmp_path.glob("*.arrow"))) == 3


def test_unknown_item_is_a_clear_error(tiny_tokenizer, tmp_path):
    import datasets
    import pytest

    bad = datasets.Dataset.from_dict({"user_id": [1], "history": [[1, 999999]], "target": [2]})
    with pytest.raises(ValueError, match="user 1"):
        tokenize_split(bad, tiny_tokenizer, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="lacks the columns"):
        tokenize_split(bad.remove_columns("target"), tiny_tokenizer, cache_dir=tmp_path)


def test_collator_pads_right_and_stacks_labels():
    collator = TigerDataCollator(pad_token_id=0)
    batch = collator([{"input_ids": [5, 6, 1], "labels": [10, 20, 30]}, {"input_ids": [7, 1], "labels": [11, 21, 31]}])
    assert batch["input_ids"].tolist() == [[5, 6, 1], [7, 1, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[10, 20, 30], [11, 21, 31]]
    padded = TigerDataCollator(pad_token_id=0, pad_to_multiple_of=8)([{"input_ids": [5, 1]}])
    assert padded["input_ids"].shape == (1, 8) and "labels" not in padded
    assert padded["input_ids"].dtype == torch.long


def _rows_of(sequences, max_history):
    from hf_tiger.data.splits import leave_one_out

    return leave_one_out(sequences, max_history=max_history)["train"]


def test_user_sequence_windows_hold_every_training_row_once():
    import pytest

    from hf_tiger.training import user_sequence_windows

    sequences = {"a": list(range(10)), "b": list(range(100, 130)), "c": [7, 8, 9]}
    rows = _rows_of(sequences, max_history=5)
    windows = user_sequence_windows(rows, max_history=5)
    assert windows[0] == {"user_id": "a", "items": [0, 1, 2, 3, 4, 5], "first_target": 1}
    assert windows[1] == {"user_id": "a", "items": [5, 6, 7], "first_target": 1}  # train stops at s[:-2]
    assert all(len(items) <= 6 for items in windows["items"])
    # every row's (user, target) occurs once, in order, and the first window gives the row's own history
    targets = [
        (user, target, items[: index])
        for user, items, first in zip(windows["user_id"], windows["items"], windows["first_target"])
        for index, target in enumerate(items)
        if index >= first
    ]
    assert [(user, target) for user, target, _ in targets] == list(zip(rows["user_id"], rows["target"]))
    assert [history for _, _, history in targets[:5]] == rows["history"][:5]
    # rows that do not continue each other (a subset, another order) start new sequences
    subset = rows.select([0, 2, 3])
    assert user_sequence_windows(subset, 5)["items"] == [[0, 1], [0, 1, 2, 3, 4]]
    # a first row with a long (truncated) history: that row keeps its history, later windows start after it
    tail = rows.filter(lambda user: user == "b", input_columns="user_id").select(range(10, 27))
    windows = user_sequence_windows(tail, max_history=5)
    assert windows[0]["items"] == tail[0]["history"] + [tail[0]["target"]]
    assert windows[0]["first_target"] == 5
    assert sum(len(w) - f for w, f in zip(windows["items"], windows["first_target"])) == tail.num_rows
    with pytest.raises(ValueError, match="max_history"):
        user_sequence_windows(rows, 0)


def test_user_sequences_tokenize_and_collate(ml100k, tiny_tokenizer, tmp_path):
    from hf_tiger.training import user_sequence_windows

    sequences, _ = ml100k
    rows = sequences["train"].select(range(60))
    windows = user_sequence_windows(rows, tiny_tokenizer.max_history)
    encoded = tokenize_split(rows, tiny_tokenizer, cache_dir=tmp_path, split_name="train", user_sequences=True)
    assert encoded.column_names == ["input_ids", "labels", "history_ends"]
    assert encoded.num_rows == windows.num_rows
    assert sum(len(labels) for labels in encoded["labels"]) == rows.num_rows
    first = encoded[0]
    user = windows[0]["user_id"]
    assert first["input_ids"][0] == tiny_tokenizer.user_token_id(user)
    items = windows[0]["items"]
    # the </s> closing each target's history: the row encoding of that history ends there
    for position, end in enumerate(first["history_ends"]):
        history = items[: windows[0]["first_target"] + position]
        alone = tiny_tokenizer.encode_history(history, user_id=user)
        kept = [t for k, t in enumerate(first["input_ids"][: end + 1]) if t != tiny_tokenizer.eos_token_id or k == end]
        assert kept == alone
    batch = TigerDataCollator(pad_token_id=0)([encoded[0], encoded[1]])
    counts = [len(encoded[0]["labels"]), len(encoded[1]["labels"])]
    levels = tiny_tokenizer.num_levels
    steps = max(counts) * levels
    assert batch["labels"].shape == batch["decoder_input_ids"].shape == (2, steps)
    assert batch["labels"][0, :levels].tolist() == encoded[0]["labels"][0]
    assert batch["decoder_input_ids"][0, :levels].tolist() == [0, *encoded[0]["labels"][0][:-1]]
    assert (batch["labels"][1, counts[1] * levels :] == -100).all()
    assert batch["decoder_attention_mask"].shape == (2, steps, steps)
    # decoder positions see their own target's earlier positions only
    assert batch["decoder_attention_mask"][0, levels, : levels + 1].tolist() == [False] * levels + [True]
    assert batch["cross_attention_mask"].shape == (2, steps, batch["input_ids"].shape[1])
    # a target's decoder sees its history's tokens and one </s>: as many positions as its row encoding has
    seen = batch["cross_attention_mask"][0, ::levels].sum(1).tolist()[: counts[0]]
    assert seen == [
        len(tiny_tokenizer.encode_history(items[: windows[0]["first_target"] + k], user_id=user))
        for k in range(counts[0])
    ]
    # another setting, another cache file
    assert len(list(tmp_path.glob("*.arrow"))) == 1
    tokenize_split(rows, tiny_tokenizer, cache_dir=tmp_path, split_name="train")
    assert len(list(tmp_path.glob("*.arrow"))) == 2
