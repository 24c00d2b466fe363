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
