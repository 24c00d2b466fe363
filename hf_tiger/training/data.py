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


def _cache_key(split: datasets.Dataset, tokenizer: Any, use_user_tokens: bool) -> str:
    parts = [
        TOKENIZATION_VERSION,
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

    Returns:
        `datasets.Dataset` with columns `input_ids` and `labels`.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in split.column_names]
    if missing:
        raise ValueError(f"the {split_name} split lacks the columns {missing} (has {split.column_names})")
    key = _cache_key(split, tokenizer, use_user_tokens)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    cache_file = folder / f"tiger-{split_name.replace('/', '-')}-{key}.arrow"
    if cache_file.exists():
        logger.info(f"loading the tokenized {split_name} split from {cache_file}")
    return split.map(
        encode_examples,
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

    Returns (when called on a list of features):
        `dict` of `torch.LongTensor`: `input_ids` and `attention_mask` of shape `(batch, seq_len)`, and `labels`
        of shape `(batch, num_levels)` when the features have labels.
    """

    pad_token_id: int = 0
    pad_to_multiple_of: int | None = None
    label_pad_token_id: int = -100

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
        if "labels" in features[0] and features[0]["labels"] is not None:
            label_width = max(len(f["labels"]) for f in features)
            labels = torch.full((len(features), label_width), self.label_pad_token_id, dtype=torch.long)
            for row, feature in enumerate(features):
                labels[row, : len(feature["labels"])] = torch.as_tensor(feature["labels"], dtype=torch.long)
            batch["labels"] = labels
        return batch
