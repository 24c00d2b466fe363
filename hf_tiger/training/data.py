"""Turn `load_sequences` splits into TIGER training examples (cached `datasets.map`) and batch them."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers.utils import logging

logger = logging.get_logger(__name__)

TOKENIZATION_VERSION = "1"
"""Bumped whenever `encode_examples` changes meaning, so stale cache files are never reused."""

REQUIRED_COLUMNS = ("user_id", "history", "target")


def default_cache_dir() -> Path:
    """`$HF_TIGER_CACHE/tokenized` or `~/.cache/hf_tiger/tokenized`."""
    root = os.environ.get("HF_TIGER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "hf_tiger")
    return Path(root) / "tokenized"


def encode_examples(batch: Mapping[str, list], tokenizer: Any, use_user_tokens: bool = True) -> dict[str, list]:
    """Encoder inputs and labels for a batch of `load_sequences` rows (a `datasets.map` function).

    Args:
        batch (`Mapping[str, list]`): columns `user_id`, `history` (item ids, oldest first) and `target`.
        tokenizer ([`SemanticIDTokenizer`]): maps item ids to semantic-ID tokens.
        use_user_tokens (`bool`, *optional*, defaults to `True`): prepend the hashed user token (TIGER does).

    Returns:
        `dict` with `input_ids` (`[user] + item tokens + [eos]` per row) and `labels` (the target's `num_levels`
        semantic-ID tokens, collision level included).
    """
    with_users = use_user_tokens and getattr(tokenizer, "num_user_buckets", 0) > 0
    users = batch["user_id"] if with_users else [None] * len(batch["history"])
    input_ids, labels = [], []
    for user, history, target in zip(users, batch["history"], batch["target"]):
        try:
            input_ids.append(tokenizer.encode_history(history, user_id=user))
            labels.append(tokenizer.encode_target(target))
        except (KeyError, ValueError) as error:
            raise ValueError(f"cannot encode the row of user {user!r} (target {target!r}): {error}") from error
    return {"input_ids": input_ids, "labels": labels}


def user_sequence_windows(split: datasets.Dataset, max_history: int) -> datasets.Dataset:
    """Regroup training rows (`user_id`, `history`, `target`) into user sequences cut into windows.

    Consecutive rows of a user whose histories continue each other (`history` = the previous row's history plus
    its target, as `leave_one_out` writes them) form one sequence: the first row's history followed by every
    target. Each sequence is cut into windows of at most `max_history + 1` items that overlap by one item, so
    every row's target is the target of exactly one window position, and a window position's history (the
    window's items before it) has at most `max_history` items: the row's own history in the first window of a
    sequence, a shorter one (from its window's first item on) in later windows.

    Args:
        split (`datasets.Dataset`): `load_sequences` training rows, in the order it writes them.
        max_history (`int`): the model's history length (`tokenizer.max_history`).

    Returns:
        `datasets.Dataset` with columns `user_id`, `items` (the window's item ids) and `first_target` (index in
        `items` of the first target; every later item is a target too).
    """
    if max_history < 1:
        raise ValueError(f"max_history must be >= 1, got {max_history}")
    missing = [c for c in REQUIRED_COLUMNS if c not in split.column_names]
    if missing:
        raise ValueError(f"the training split lacks the columns {missing} (has {split.column_names})")
    columns: dict[str, list] = {"user_id": [], "items": [], "first_target": []}

    def add(user, items: list, first_target: int) -> None:
        start = max(0, first_target - max_history)
        while True:
            end = min(len(items), start + max_history + 1)
            columns["user_id"].append(user)
            columns["items"].append(items[start:end])
            columns["first_target"].append(max(first_target, start + 1) - start)
            if end >= len(items):
                return
            start = end - 1

    user, items, first_target, last_history = None, None, 0, None
    for row_user, history, target in zip(split["user_id"], split["history"], split["target"]):
        history = list(history)
        if not history:
            raise ValueError(f"a training row of user {row_user!r} has an empty history")
        follows = (
            items is not None
            and row_user == user
            and len(history) >= len(last_history)
            and history == items[len(items) - len(history) :]
        )
        if follows:
            items.append(target)
        else:
            if items is not None:
                add(user, items, first_target)
            user, items, first_target = row_user, [*history, target], len(history)
        last_history = history
    if items is not None:
        add(user, items, first_target)
    features = datasets.Features(
        {
            "user_id": split.features["user_id"],
            "items": datasets.List(split.features["target"]),
            "first_target": datasets.Value("int64"),
        }
    )
    return datasets.Dataset.from_dict(columns, features=features)


def encode_user_sequences(
    batch: Mapping[str, list], tokenizer: Any, use_user_tokens: bool = True
) -> dict[str, list]:
    """Encoder inputs and labels of [`user_sequence_windows`] windows (a `datasets.map` function).

    Returns:
        `dict` with `input_ids` (`[user]` then `item tokens + [eos]` for every item of the window but the last),
        `labels` (one list of `num_levels` tokens per target) and `history_ends` (per target, the position in
        `input_ids` of the `</s>` that closes its history).
    """
    with_users = use_user_tokens and getattr(tokenizer, "num_user_buckets", 0) > 0
    input_ids, labels, history_ends = [], [], []
    for user, items, first_target in zip(batch["user_id"], batch["items"], batch["first_target"]):
        try:
            ids = [tokenizer.user_token_id(user)] if with_users else []
            ends = []
            for item in items[:-1]:
                ids.extend(tokenizer.encode_history([item]))  # the item's tokens and </s>
                ends.append(len(ids) - 1)
            input_ids.append(ids)
            labels.append([tokenizer.encode_target(item) for item in items[first_target:]])
            history_ends.append(ends[first_target - 1 :])
        except (KeyError, ValueError) as error:
            raise ValueError(f"cannot encode the sequence of user {user!r}: {error}") from error
    return {"input_ids": input_ids, "labels": labels, "history_ends": history_ends}


def _cache_key(split: datasets.Dataset, tokenizer: Any, use_user_tokens: bool, sequences: bool = False) -> str:
    parts = [
        TOKENIZATION_VERSION,
        *(["user-sequences"] if sequences else []),
        split._fingerprint,
        tokenizer.catalogue_fingerprint(),
        str(getattr(tokenizer, "num_user_buckets", 0)),
        str(getattr(tokenizer, "max_history", "")),
        str(bool(use_user_tokens)),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def tokenize_split(
    split: datasets.Dataset,
    tokenizer: Any,
    use_user_tokens: bool = True,
    cache_dir: str | os.PathLike | None = None,
    num_proc: int | None = None,
    split_name: str = "split",
    user_sequences: bool = False,
) -> datasets.Dataset:
    """Tokenize one split with `datasets.map`, cached on disk.

    The cache file name is a hash of the split's fingerprint, the tokenizer's catalogue fingerprint and the
    encoding settings, so a second call with the same data and tokenizer loads the Arrow file instead of
    re-encoding, and any change (another RQ-VAE, other user buckets) gets a new file.

    Args:
        split (`datasets.Dataset`): rows with `user_id`, `history`, `target`.
        tokenizer ([`SemanticIDTokenizer`]): the semantic-ID tokenizer.
        use_user_tokens (`bool`, *optional*, defaults to `True`): prepend the user token.
        cache_dir (`str`, *optional*): folder of the cache files; defaults to [`default_cache_dir`].
        num_proc (`int`, *optional*): processes for `datasets.map`.
        split_name (`str`, *optional*): used in log messages and the cache file name.
        user_sequences (`bool`, *optional*, defaults to `False`): encode the rows regrouped into user-sequence
            windows ([`user_sequence_windows`], [`encode_user_sequences`]) for a causal-encoder TIGER: one example per
            window, with `history_ends` and one label list per target.

    Returns:
        `datasets.Dataset` with columns `input_ids` and `labels` (and `history_ends` with `user_sequences`).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in split.column_names]
    if missing:
        raise ValueError(f"the {split_name} split lacks the columns {missing} (has {split.column_names})")
    key = _cache_key(split, tokenizer, use_user_tokens, sequences=user_sequences)
    function = encode_examples
    if user_sequences:
        split = user_sequence_windows(split, tokenizer.max_history)
        function = encode_user_sequences
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    cache_file = folder / f"tiger-{split_name.replace('/', '-')}-{key}.arrow"
    if cache_file.exists():
        logger.info(f"loading the tokenized {split_name} split from {cache_file}")
    return split.map(
        function,
        batched=True,
        batch_size=1000,
        fn_kwargs={"tokenizer": tokenizer, "use_user_tokens": use_user_tokens},
        remove_columns=split.column_names,
        num_proc=num_proc,
        cache_file_name=str(cache_file),
        load_from_cache_file=True,
        new_fingerprint=key,
        desc=f"Tokenizing {split_name}",
    )


def tokenize_sequences(
    dataset: Mapping[str, datasets.Dataset],
    tokenizer: Any,
    splits: Sequence[str] = ("train", "validation"),
    **kwargs,
) -> datasets.DatasetDict:
    """Tokenize the named splits of a `load_sequences` `DatasetDict` (see [`tokenize_split`]).

    Only the splits asked for are read: the training code tokenizes `test` separately, after training.
    """
    return datasets.DatasetDict(
        {name: tokenize_split(dataset[name], tokenizer, split_name=name, **kwargs) for name in splits}
    )


def length_order(encoded: datasets.Dataset) -> list[int]:
    """Row indices ordered by encoder input length (stable)."""
    lengths = [len(ids) for ids in encoded["input_ids"]]
    return sorted(range(len(lengths)), key=lengths.__getitem__)


def sort_by_length(encoded: datasets.Dataset) -> datasets.Dataset:
    """Rows ordered by encoder input length (stable), so evaluation batches carry little padding.

    Evaluation metrics are means over rows, so the order does not change them; the Trainer's evaluation reads
    batches in order, and batches of similar lengths skip most of the padding of full-width batches.
    """
    order = length_order(encoded)
    return encoded if order == list(range(len(order))) else encoded.select(order)


@dataclass
class TigerDataCollator:
    """Pads encoder inputs (right, `<pad>`) and stacks the fixed-length semantic-ID labels.

    Args:
        pad_token_id (`int`, *optional*, defaults to 0): the tokenizer's `<pad>` id.
        pad_to_multiple_of (`int`, *optional*): round the padded length up (tensor cores like multiples of 8).
        label_pad_token_id (`int`, *optional*, defaults to -100): label padding, ignored by the loss.
        decoder_start_token_id (`int`, *optional*): first decoder input of each packed user-sequence target
            (defaults to `pad_token_id`, T5's and TIGER's decoder start).

    Returns (when called on a list of features):
        `dict` of `torch.LongTensor`: `input_ids` and `attention_mask` of shape `(batch, seq_len)`, and `labels`
        of shape `(batch, num_levels)` when the features have labels. User-sequence features (with
        `history_ends`, see [`encode_user_sequences`]) pack each feature's targets into one decoder row: `labels`
        and `decoder_input_ids` of shape `(batch, max_targets * num_levels)` (label padding -100), and the boolean
        `decoder_attention_mask` (`(batch, steps, steps)`: causal within a target) and `cross_attention_mask`
        (`(batch, steps, seq_len)`: the target's history tokens and the `</s>` closing it), the inputs of
        `TigerForConditionalGeneration.forward` for one encoder pass per sequence.
    """

    pad_token_id: int = 0
    pad_to_multiple_of: int | None = None
    label_pad_token_id: int = -100
    decoder_start_token_id: int | None = None

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty batch")
        lengths = [len(f["input_ids"]) for f in features]
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, (feature, length) in enumerate(zip(features, lengths)):
            input_ids[row, :length] = torch.as_tensor(feature["input_ids"], dtype=torch.long)
            attention_mask[row, :length] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "history_ends" in features[0]:
            return self._sequence_targets(features, batch)
        if "labels" in features[0] and features[0]["labels"] is not None:
            label_width = max(len(f["labels"]) for f in features)
            labels = torch.full((len(features), label_width), self.label_pad_token_id, dtype=torch.long)
            for row, feature in enumerate(features):
                labels[row, : len(feature["labels"])] = torch.as_tensor(feature["labels"], dtype=torch.long)
            batch["labels"] = labels
        return batch

    def _sequence_targets(self, features, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Packs each feature's targets into one decoder row (see `TigerForConditionalGeneration.forward`)."""
        input_ids, valid = batch["input_ids"], batch["attention_mask"].bool()
        num_levels = len(features[0]["labels"][0]) if features[0]["labels"] else 0
        counts = [len(feature["labels"]) for feature in features]
        for feature, count in zip(features, counts):
            if len(feature["history_ends"]) != count or count == 0:
                raise ValueError(
                    f"a user-sequence feature needs one history end per target, got {count} targets and "
                    f"{len(feature['history_ends'])} history ends"
                )
            if any(len(labels) != num_levels for labels in feature["labels"]):
                raise ValueError("the targets of user-sequence features must all have the same number of tokens")
        steps = max(counts) * num_levels
        size, length = len(features), input_ids.shape[1]
        labels = torch.full((size, steps), self.label_pad_token_id, dtype=torch.long)
        decoder_input_ids = torch.full((size, steps), self.pad_token_id, dtype=torch.long)
        target_of = torch.full((size, steps), -1, dtype=torch.long)  # target index of each decoder position
        ends = torch.zeros((size, steps), dtype=torch.long)  # position of the </s> closing that target's history
        start_token = self.pad_token_id if self.decoder_start_token_id is None else self.decoder_start_token_id
        for row, feature in enumerate(features):
            for index, (target, end) in enumerate(zip(feature["labels"], feature["history_ends"])):
                block = slice(index * num_levels, (index + 1) * num_levels)
                labels[row, block] = torch.as_tensor(target, dtype=torch.long)
                decoder_input_ids[row, block] = torch.as_tensor([start_token, *target[:-1]], dtype=torch.long)
                target_of[row, block] = index
                ends[row, block] = end
        positions = torch.arange(steps)
        same = (target_of[:, :, None] == target_of[:, None, :]) & (target_of[:, :, None] >= 0)
        decoder_mask = (same & (positions[None, None, :] <= positions[None, :, None])) | torch.eye(
            steps, dtype=torch.bool
        )[None]
        keys = torch.arange(length)[None, None, :]
        closing = ends[:, :, None]
        history = (keys < closing) & valid[:, None, :] & (input_ids[:, None, :] != input_ids.gather(1, ends)[:, :, None])
        cross = history | (keys == closing)  # a padding position sees position 0: no empty softmax
        batch["labels"] = labels
        batch["decoder_input_ids"] = decoder_input_ids
        batch["decoder_attention_mask"] = decoder_mask
        batch["cross_attention_mask"] = cross
        return batch

