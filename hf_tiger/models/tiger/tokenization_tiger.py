"""SemanticIDTokenizer: maps catalogue item ids to semantic-ID tokens and back (TIGER's vocabulary).

This file ships as Hub remote code: it imports only torch, transformers and the standard library.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any, Union

import torch
from transformers import PreTrainedTokenizer
from transformers.tokenization_utils_base import BatchEncoding
from transformers.utils import logging

logger = logging.get_logger(__name__)

VOCAB_FILES_NAMES = {"catalogue_file": "semantic_ids.json"}
CATALOGUE_FORMAT = "hf_tiger.semantic_ids"
CATALOGUE_FORMAT_VERSION = 1
NUM_SPECIAL_TOKENS = 3  # <pad> = 0 (also T5's decoder start), </s> = 1, <unk> = 2

ItemId = Union[int, str]

_TOKEN_RE = re.compile(r"<[^<>\s]+>|\S+")


class UnknownItemError(KeyError):
    """Raised when item ids are not in the tokenizer's catalogue; the message lists them."""

    def __str__(self) -> str:  # KeyError would repr() the message, quoting it
        return str(self.args[0]) if self.args else ""


def catalogue_fingerprint(catalogue_token_ids: torch.Tensor) -> str:
    """Stable SHA-256 fingerprint of a catalogue table of token ids.

    Used to check that a tokenizer and a model agree on the catalogue. The model can compute it from its
    `catalogue` buffer alone, so it depends only on the token ids and their order (not on item ids).

    Args:
        catalogue_token_ids (`torch.LongTensor` of shape `(num_items, num_levels)`): token ids, row i = item i.

    Returns:
        `str`: hex digest.
    """
    table = torch.as_tensor(catalogue_token_ids).to(torch.int64).contiguous().cpu()
    digest = hashlib.sha256()
    digest.update(json.dumps(list(table.shape)).encode("utf-8"))
    digest.update(table.numpy().astype("<i8").tobytes())
    return digest.hexdigest()


def _normalize_item_id(item_id: Any) -> ItemId:
    """Return the item id as a plain `int` or `str` (numpy / 0-d tensor ints become `int`)."""
    if isinstance(item_id, bool):
        raise TypeError(f"item ids must be int or str, got bool {item_id!r}")
    if isinstance(item_id, str):
        return item_id
    if isinstance(item_id, numbers.Integral):
        return int(item_id)
    if hasattr(item_id, "item") and getattr(item_id, "ndim", None) == 0:
        return _normalize_item_id(item_id.item())
    raise TypeError(f"item ids must be int or str, got {type(item_id).__name__} {item_id!r}")


def _preview(values: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (f", ... ({len(values)} in total)" if len(values) > limit else "")


def _as_code_table(codes: Any, name: str = "codes") -> torch.Tensor:
    table = torch.as_tensor(codes)
    if table.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D [num_items, num_levels], got shape {tuple(table.shape)}")
    if table.is_floating_point() or table.is_complex() or table.dtype == torch.bool:
        raise ValueError(f"`{name}` must hold integer codes, got dtype {table.dtype}")
    if table.shape[1] < 1:
        raise ValueError(f"`{name}` must have at least one level, got shape {tuple(table.shape)}")
    if table.numel() and int(table.min()) < 0:
        row = int((table < 0).any(dim=1).nonzero()[0])
        raise ValueError(f"`{name}` must be non-negative; row {row} is {table[row].tolist()}")
    return table.to(torch.int64).cpu()


class SemanticIDTokenizer(PreTrainedTokenizer):
    r"""
    Tokenizer for TIGER: every catalogue item is a tuple of codes (its *semantic ID*), one token per level.

    Vocabulary layout (token ids):

    - `0` = `<pad>` (also T5's decoder start token), `1` = `</s>` (end of sequence), `2` = `<unk>`;
    - `num_user_buckets` user tokens `<u_0>`, `<u_1>`, ... (users are hashed with a stable hash);
    - one range per level `l`: token `level_offsets[l] + c` is code `c` of level `l`, written `<l{l}_{c}>`.
      The last level is the collision level that makes items sharing all RQ-VAE codes unique.

    Build one with [`SemanticIDTokenizer.from_codes`]; `save_pretrained` writes `tokenizer_config.json` (the
    layout settings) and `semantic_ids.json` (item ids with their JSON type, and their semantic IDs).

    Encoder inputs are `[user token] + semantic-ID tokens of the (at most `max_history`) most recent history
    items + [</s>]`; labels are the target's `num_levels` semantic-ID tokens without `</s>`. Batches are padded on
    the right with `<pad>` (T5 convention) with an `attention_mask`; pass `padding_side="left"` to change it.

    Args:
        catalogue_file (`str`, *optional*):
            Path to a `semantic_ids.json` file written by `save_pretrained`. Without it the catalogue is empty
            (fill it with [`~SemanticIDTokenizer.add_items`]).
        codebook_sizes (`list[int]`, *optional*):
            Codebook size of every level, the collision level last. Read from `catalogue_file` when omitted.
        num_user_buckets (`int`, *optional*, defaults to 2000):
            Number of user tokens; user ids are hashed into these buckets. 0 disables user tokens.
        max_history (`int`, *optional*, defaults to 20):
            Number of most recent history items kept by `encode_history` (older ones are dropped).

    Example:

    ```python
    >>> import torch
    >>> from hf_tiger import SemanticIDTokenizer
    >>> codes = torch.tensor([[1, 2], [1, 2], [0, 3]])
    >>> tok = SemanticIDTokenizer.from_codes(codes, item_ids=[10, 11, 12], codebook_size=4, collision_size=4,
    ...                                      num_user_buckets=8)
    >>> tok.semantic_id(11)
    (1, 2, 1)
    >>> tok.decode_items(tok.encode_history([12, 10]))
    [12, 10]

    ```
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        catalogue_file: str | None = None,
        codebook_sizes: Sequence[int] | None = None,
        num_user_buckets: int = 2000,
        max_history: int = 20,
        pad_token: str = "<pad>",
        eos_token: str = "</s>",
        unk_token: str = "<unk>",
        **kwargs,
    ):
        payload = None
        if catalogue_file is not None:
            with open(catalogue_file, encoding="utf-8") as f:
                payload = json.load(f)
            if payload.get("format") != CATALOGUE_FORMAT:
                raise ValueError(f"{catalogue_file} is not a {CATALOGUE_FORMAT} file")
            saved_sizes = [int(s) for s in payload["codebook_sizes"]]
            if codebook_sizes is not None and [int(s) for s in codebook_sizes] != saved_sizes:
                raise ValueError(
                    f"codebook_sizes={list(codebook_sizes)} disagrees with {catalogue_file} ({saved_sizes})"
                )
            codebook_sizes = saved_sizes
            saved_buckets = int(payload.get("num_user_buckets", num_user_buckets))
            if saved_buckets != int(num_user_buckets):
                raise ValueError(
                    f"num_user_buckets={num_user_buckets} disagrees with {catalogue_file} ({saved_buckets})"
                )
        if codebook_sizes is None:
            raise ValueError(
                "codebook_sizes is required (or a catalogue_file); use SemanticIDTokenizer.from_codes"
            )
        codebook_sizes = [int(s) for s in codebook_sizes]
        if len(codebook_sizes) < 2:
            raise ValueError(
                f"codebook_sizes needs at least one code level plus the collision level, got {codebook_sizes}"
            )
        if any(s < 1 for s in codebook_sizes):
            raise ValueError(f"codebook_sizes must all be >= 1, got {codebook_sizes}")
        if int(num_user_buckets) < 0:
            raise ValueError(f"num_user_buckets must be >= 0, got {num_user_buckets}")
        if int(max_history) < 1:
            raise ValueError(f"max_history must be >= 1, got {max_history}")

        self.codebook_sizes = codebook_sizes
        self.num_user_buckets = int(num_user_buckets)
        self.max_history = int(max_history)
        offsets, start = [], NUM_SPECIAL_TOKENS + self.num_user_buckets
        for size in codebook_sizes:
            offsets.append(start)
            start += size
        self.level_offsets = offsets

        tokens = [str(pad_token), str(eos_token), str(unk_token)]  # AddedToken objects when loaded
        tokens += [f"<u_{b}>" for b in range(self.num_user_buckets)]
        for level, size in enumerate(codebook_sizes):
            tokens += [f"<l{level}_{c}>" for c in range(size)]
        self._id_to_token = tokens
        self._token_to_id = {t: i for i, t in enumerate(tokens)}
        if len(self._token_to_id) != len(tokens):
            raise ValueError(
                "special tokens collide with user or level tokens; keep the default special tokens"
            )

        self._item_ids: list[ItemId] = []
        self._mapping_fingerprints: dict[int, str] = {}  # items are only appended: a prefix never changes
        self._semantic_ids: list[tuple[int, ...]] = []
        self._row_of_item: dict[ItemId, int] = {}
        self._row_of_semantic_id: dict[tuple[int, ...], int] = {}
        self._collisions_used: dict[tuple[int, ...], int] = {}
        self._catalogue_cache: torch.Tensor | None = None

        kwargs.setdefault("model_max_length", 2 + self.max_history * len(codebook_sizes))
        kwargs.setdefault("padding_side", "right")
        super().__init__(
            codebook_sizes=codebook_sizes,
            num_user_buckets=self.num_user_buckets,
            max_history=self.max_history,
            pad_token=pad_token,
            eos_token=eos_token,
            unk_token=unk_token,
            **kwargs,
        )
        if payload is not None:
            self._extend_catalogue(payload["item_ids"], payload["semantic_ids"], source=catalogue_file)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_codes(
        cls,
        codes: Any,
        item_ids: Iterable[Any],
        codebook_size: int | Sequence[int] | None = None,
        collision_size: int | None = None,
        num_user_buckets: int = 2000,
        max_history: int = 20,
        codebook_sizes: Sequence[int] | None = None,
        **kwargs,
    ) -> SemanticIDTokenizer:
        """Build a tokenizer from RQ-VAE codes, appending the collision level.

        Items sharing all codes get collision codes 0, 1, 2, ... in catalogue order, so every semantic ID is
        unique and the assignment is deterministic.

        Args:
            codes (`torch.LongTensor` / `np.ndarray` / nested lists of shape `(num_items, num_code_levels)`):
                RQ-VAE codes, row i belongs to `item_ids[i]`.
            item_ids (iterable of `int` or `str`, length `num_items`):
                Catalogue item ids; their type is kept (and saved).
            codebook_size (`int` or `list[int]`, *optional*):
                Codebook size of the code levels (one int for all, or one per level). Defaults to the largest
                code seen per level + 1 (pass it explicitly so new items can use every code).
            collision_size (`int`, *optional*):
                Size of the collision level, i.e. the largest number of items that may share all codes. Defaults
                to the largest code-level codebook size. A larger collision group is an error.
            num_user_buckets (`int`, *optional*, defaults to 2000): number of hashed user tokens.
            max_history (`int`, *optional*, defaults to 20): most recent history items kept per input.
            codebook_sizes (`list[int]`, *optional*): alias of `codebook_size` given per level.
            kwargs: passed to the constructor (e.g. `padding_side`).

        Returns:
            [`SemanticIDTokenizer`]
        """
        if codebook_size is not None and codebook_sizes is not None:
            raise ValueError("pass either codebook_size or codebook_sizes, not both")
        if codebook_sizes is not None:
            codebook_size = codebook_sizes
        table = _as_code_table(codes)
        item_ids = list(item_ids)
        if len(item_ids) != table.shape[0]:
            raise ValueError(f"codes has {table.shape[0]} rows but {len(item_ids)} item ids were given")
        num_code_levels = table.shape[1]
        if codebook_size is None:
            sizes = (table.max(dim=0).values + 1).tolist() if table.shape[0] else [1] * num_code_levels
            logger.info(f"codebook sizes inferred from the codes: {sizes}")
        elif isinstance(codebook_size, numbers.Integral):
            sizes = [int(codebook_size)] * num_code_levels
        else:
            sizes = [int(s) for s in codebook_size]
            if len(sizes) != num_code_levels:
                raise ValueError(
                    f"codebook_size has {len(sizes)} entries but codes have {num_code_levels} levels"
                )
        if collision_size is None:
            collision_size = max(sizes)
        if int(collision_size) < 1:
            raise ValueError(f"collision_size must be >= 1, got {collision_size}")
        tokenizer = cls(
            codebook_sizes=sizes + [int(collision_size)],
            num_user_buckets=num_user_buckets,
            max_history=max_history,
            **kwargs,
        )
        tokenizer.add_items(table, item_ids)
        return tokenizer

    def add_items(self, codes: Any, item_ids: Iterable[Any]) -> list[tuple[int, ...]]:
        """Add items to the catalogue (cold start); collision codes continue after the existing items.

        Args:
            codes (`torch.LongTensor` / array / nested lists of shape `(num_new_items, num_levels - 1)`):
                RQ-VAE codes of the new items (without the collision level).
            item_ids (iterable of `int` or `str`): ids of the new items, not already in the catalogue.

        Returns:
            `list[tuple[int, ...]]`: the full semantic IDs assigned to the new items.
        """
        table = _as_code_table(codes)
        item_ids = [_normalize_item_id(i) for i in item_ids]
        if len(item_ids) != table.shape[0]:
            raise ValueError(f"codes has {table.shape[0]} rows but {len(item_ids)} item ids were given")
        if table.shape[1] != self.num_levels - 1:
            raise ValueError(
                f"codes have {table.shape[1]} levels but this tokenizer expects {self.num_levels - 1} "
                "(the collision level is appended by the tokenizer)"
            )
        self._check_codes_in_range(table, self.codebook_sizes[:-1], item_ids)
        self._check_new_ids(item_ids)

        collisions = dict(self._collisions_used)
        members: dict[tuple[int, ...], list[ItemId]] = {}
        semantic_ids = []
        for item_id, row in zip(item_ids, table.tolist()):
            key = tuple(row)
            collision = collisions.get(key, 0)
            collisions[key] = collision + 1
            members.setdefault(key, []).append(item_id)
            semantic_ids.append((*key, collision))
        oversize = {k: n for k, n in collisions.items() if n > self.collision_size}
        if oversize:
            key = max(oversize, key=oversize.get)
            existing = [i for i, s in zip(self._item_ids, self._semantic_ids) if s[:-1] == key]
            raise ValueError(
                f"{len(oversize)} collision group(s) exceed collision_size={self.collision_size}; the largest: "
                f"{oversize[key]} items share codes {key} (items: {_preview(existing + members.get(key, []))}). "
                "Raise collision_size or improve the RQ-VAE (more levels / codes)."
            )
        self._extend_catalogue(item_ids, semantic_ids)
        return semantic_ids

    def _check_new_ids(self, item_ids: list[ItemId]) -> None:
        seen, duplicates = set(), []
        for item_id in item_ids:
            if item_id in seen or item_id in self._row_of_item:
                duplicates.append(item_id)
            seen.add(item_id)
        if duplicates:
            raise ValueError(f"duplicate item ids: {_preview(sorted(set(duplicates), key=repr))}")

    @staticmethod
    def _check_codes_in_range(table: torch.Tensor, sizes: Sequence[int], item_ids: Sequence[ItemId]) -> None:
        if not table.numel():
            return
        bad = table >= torch.tensor(sizes, dtype=torch.int64)
        if bad.any():
            row, level = (int(v) for v in bad.nonzero()[0])
            raise ValueError(
                f"code {int(table[row, level])} of item {item_ids[row]!r} (row {row}) is out of range for "
                f"level {level} (codebook size {sizes[level]})"
            )

    def _extend_catalogue(
        self, item_ids: Sequence[Any], semantic_ids: Sequence[Sequence[int]], source=None
    ) -> None:
        item_ids = [_normalize_item_id(i) for i in item_ids]
        semantic_ids = [tuple(int(c) for c in s) for s in semantic_ids]
        where = f" in {source}" if source else ""
        if len(item_ids) != len(semantic_ids):
            raise ValueError(f"{len(item_ids)} item ids but {len(semantic_ids)} semantic ids{where}")
        if source is not None:
            self._check_new_ids(item_ids)
            if semantic_ids and any(len(s) != self.num_levels for s in semantic_ids):
                raise ValueError(f"every semantic id must have {self.num_levels} levels{where}")
            self._check_codes_in_range(
                torch.tensor(semantic_ids).view(-1, self.num_levels), self.codebook_sizes, item_ids
            )
        for item_id, sid in zip(item_ids, semantic_ids):
            if sid in self._row_of_semantic_id:
                other = self._item_ids[self._row_of_semantic_id[sid]]
                raise ValueError(f"items {other!r} and {item_id!r} have the same semantic id {sid}{where}")
            self._row_of_semantic_id[sid] = len(self._item_ids)
            self._row_of_item[item_id] = len(self._item_ids)
            self._item_ids.append(item_id)
            self._semantic_ids.append(sid)
            self._collisions_used[sid[:-1]] = max(self._collisions_used.get(sid[:-1], 0), sid[-1] + 1)
        self._catalogue_cache = None

    # ------------------------------------------------------------------ layout

    @property
    def num_levels(self) -> int:
        """Number of semantic-ID levels, including the collision level."""
        return len(self.codebook_sizes)

    @property
    def collision_size(self) -> int:
        """Size of the collision level (the largest allowed group of items sharing all codes)."""
        return self.codebook_sizes[-1]

    @property
    def vocab_size(self) -> int:
        return len(self._id_to_token)

    @property
    def user_token_offset(self) -> int:
        """Token id of `<u_0>`."""
        return NUM_SPECIAL_TOKENS

    @property
    def item_ids(self) -> list[ItemId]:
        """Catalogue item ids in catalogue order (row i of `catalogue_token_ids()`)."""
        return list(self._item_ids)

    @property
    def catalogue_size(self) -> int:
        return len(self._item_ids)

    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self._token_to_id)
        vocab.update(self.added_tokens_encoder)
        return vocab

    # ------------------------------------------------------------------ items <-> tokens

    def _rows(self, item_ids: Iterable[Any]) -> list[int]:
        rows, unknown = [], []
        for item_id in item_ids:
            row = self._row_of_item.get(_normalize_item_id(item_id))
            if row is None:
                unknown.append(item_id)
            rows.append(row)
        if unknown:
            raise UnknownItemError(
                f"{len(unknown)} unknown item id(s), not in the tokenizer's catalogue of {self.catalogue_size} "
                f"items: {_preview(unknown)}"
            )
        return rows

    def semantic_id(self, item_id: ItemId) -> tuple[int, ...]:
        """Codes of an item, one per level (collision level last)."""
        return self._semantic_ids[self._rows([item_id])[0]]

    def item_token_ids(self, item_id: ItemId) -> list[int]:
        """Token ids of an item's semantic ID (`num_levels` tokens)."""
        return [offset + code for offset, code in zip(self.level_offsets, self.semantic_id(item_id))]

    def catalogue_token_ids(self) -> torch.Tensor:
        """`torch.LongTensor` of shape `(catalogue_size, num_levels)`: token ids, row i = `item_ids[i]`."""
        if self._catalogue_cache is None:
            codes = torch.tensor(self._semantic_ids, dtype=torch.int64).view(-1, self.num_levels)
            self._catalogue_cache = codes + torch.tensor(self.level_offsets, dtype=torch.int64)
        return self._catalogue_cache.clone()

    def catalogue_fingerprint(self) -> str:
        """SHA-256 of `catalogue_token_ids()`; equals `TigerForConditionalGeneration.catalogue_fingerprint()`."""
        return catalogue_fingerprint(self.catalogue_token_ids())

    def item_mapping_fingerprint(self, num_items: int | None = None) -> str:
        """SHA-256 of the item id -> semantic ID mapping of the first `num_items` items (default: all).

        Unlike `catalogue_fingerprint`, it depends on the item ids (and their type), so a tokenizer that gives the
        same semantic IDs to other items is told apart. `add_items` appends, so the fingerprint of the first items
        does not change when items are added.
        """
        count = self.catalogue_size if num_items is None else int(num_items)
        if not 0 <= count <= self.catalogue_size:
            raise ValueError(f"num_items={num_items} outside [0, {self.catalogue_size}]")
        if count not in self._mapping_fingerprints:  # checked on every recommend() call: computed once per size
            digest = hashlib.sha256()
            digest.update(json.dumps([[type(i).__name__, i] for i in self.item_ids[:count]]).encode("utf-8"))
            digest.update(catalogue_fingerprint(self.catalogue_token_ids()[:count]).encode("utf-8"))
            self._mapping_fingerprints[count] = digest.hexdigest()
        return self._mapping_fingerprints[count]

    def user_token_id(self, user_id: Any) -> int:
        """Token id of the user's bucket: BLAKE2b of `str(user_id)` modulo `num_user_buckets` (stable across runs)."""
        if self.num_user_buckets == 0:
            raise ValueError("this tokenizer has no user tokens (num_user_buckets=0); pass user_id=None")
        digest = hashlib.blake2b(str(user_id).encode("utf-8"), digest_size=8).digest()
        return NUM_SPECIAL_TOKENS + int.from_bytes(digest, "big") % self.num_user_buckets

    def encode_history(self, item_ids: Sequence[Any], user_id: Any = None) -> list[int]:
        """Encoder input ids of one history.

        Args:
            item_ids (sequence of `int` / `str`): the history, oldest first. Only the `max_history` most recent
                items are kept (older ones are dropped).
            user_id (`int` / `str`, *optional*): prepends the user's hashed token when given.

        Returns:
            `list[int]`: `[user token] + semantic-ID tokens of each item + [eos]`.
        """
        if isinstance(item_ids, (str, bytes)) or not isinstance(item_ids, Iterable):
            raise TypeError(f"a history must be a sequence of item ids, got {type(item_ids).__name__}")
        item_ids = list(item_ids)
        if not item_ids:
            raise ValueError("empty history: at least one item is needed to recommend the next one")
        rows = self._rows(item_ids[-self.max_history :])
        ids = [] if user_id is None else [self.user_token_id(user_id)]
        for row in rows:
            ids.extend(offset + code for offset, code in zip(self.level_offsets, self._semantic_ids[row]))
        ids.append(self.eos_token_id)
        return ids

    def encode_target(self, item_id: Any) -> list[int]:
        """Labels for one target item: its `num_levels` semantic-ID token ids (no eos)."""
        return self.item_token_ids(item_id)

    def batch_encode_histories(
        self,
        histories: Sequence[Sequence[Any]],
        user_ids: Sequence[Any] | None = None,
        targets: Sequence[Any] | None = None,
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool = True,
        return_tensors: str | None = "pt",
    ) -> BatchEncoding:
        """Encode a batch of histories (and targets) for the model or the trainer.

        Args:
            histories (list of lists of item ids): one history per example, oldest item first.
            user_ids (list, *optional*): one user id per example (`None` entries skip the user token).
            targets (list of item ids, *optional*): adds `labels` of shape `(batch, num_levels)`.
            padding (`bool` or `str`, defaults to `True`): as in `PreTrainedTokenizer.pad`.
            max_length, pad_to_multiple_of: as in `PreTrainedTokenizer.pad`.
            padding_side (`str`, *optional*): `"right"` (default, T5 convention) or `"left"`.
            return_attention_mask (`bool`, defaults to `True`).
            return_tensors (`str`, *optional*, defaults to `"pt"`).

        Returns:
            `BatchEncoding` with `input_ids`, `attention_mask` (`(batch, seq_len)`) and optionally `labels`.
        """
        histories = list(histories)
        for name, values in (("user_ids", user_ids), ("targets", targets)):
            if values is not None and len(values) != len(histories):
                raise ValueError(f"{len(histories)} histories but {len(values)} {name}")
        unknown = []
        for history in histories:
            if isinstance(history, (str, bytes)) or not isinstance(history, Iterable):
                raise TypeError(f"each history must be a list of item ids, got {type(history).__name__}")
            unknown += [i for i in history if _normalize_item_id(i) not in self._row_of_item]
        unknown += [t for t in (targets or []) if _normalize_item_id(t) not in self._row_of_item]
        if unknown:
            self._rows(unknown)  # raises, listing all of them
        users = user_ids if user_ids is not None else [None] * len(histories)
        input_ids = []
        for index, (history, user) in enumerate(zip(histories, users)):
            try:
                input_ids.append(self.encode_history(history, user_id=user))
            except ValueError as error:
                raise ValueError(f"history {index}: {error}") from error
        batch = self.pad(
            {"input_ids": input_ids},
            padding=padding,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_attention_mask=return_attention_mask,
        )
        data = dict(batch)
        if targets is not None:
            data["labels"] = [self.encode_target(t) for t in targets]
        return BatchEncoding(data, tensor_type=return_tensors)

    def __call__(self, text=None, *args, user_ids=None, targets=None, **kwargs):
        """Histories (a list of lists of item ids) go to `batch_encode_histories`; text goes to the base class."""
        is_histories = (
            isinstance(text, (list, tuple))
            and len(text) > 0
            and all(isinstance(h, (list, tuple)) for h in text)
            and not kwargs.get("is_split_into_words", False)
        )
        if is_histories or user_ids is not None or targets is not None:
            return self.batch_encode_histories(text, *args, user_ids=user_ids, targets=targets, **kwargs)
        return super().__call__(text, *args, **kwargs)

    def decode_items(self, generated_ids: Any) -> list[ItemId | None]:
        """Item ids of token sequences.

        Args:
            generated_ids (`torch.LongTensor` / array / lists):
                - shape `(batch, seq_len)`: one item per row, e.g. `generate()` output with or without the leading
                  decoder start token; a row that is not exactly one catalogue item (padding rows of
                  `generate()`, invalid codes) decodes to `None`.
                - shape `(seq_len,)`: one sequence holding any number of items, e.g. `encode_history(...)` or
                  `encode_target(...)` output; returns one entry per `num_levels` item tokens.

        Returns:
            `list`: item ids (original type) or `None`.
        """
        if hasattr(generated_ids, "tolist"):
            generated_ids = generated_ids.tolist()
        generated_ids = list(generated_ids)
        if generated_ids and isinstance(generated_ids[0], (list, tuple)):
            results = []
            for row in generated_ids:
                items = self._parse_items(row)
                results.append(items[0] if len(items) == 1 else None)
            return results
        return self._parse_items(generated_ids)

    def _parse_items(self, ids: Sequence[int]) -> list[ItemId | None]:
        first_level = self.level_offsets[0]
        level_tokens = [int(t) for t in ids if int(t) >= first_level]
        items: list[ItemId | None] = []
        for start in range(0, len(level_tokens), self.num_levels):
            chunk = level_tokens[start : start + self.num_levels]
            codes = tuple(t - offset for t, offset in zip(chunk, self.level_offsets))
            valid = len(chunk) == self.num_levels and all(
                0 <= c < size for c, size in zip(codes, self.codebook_sizes)
            )
            row = self._row_of_semantic_id.get(codes) if valid else None
            items.append(None if row is None else self._item_ids[row])
        return items

    # ------------------------------------------------------------------ PreTrainedTokenizer plumbing

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return _TOKEN_RE.findall(text)

    def _convert_token_to_id(self, token: str) -> int:
        return self._token_to_id.get(token, self._token_to_id[str(self.unk_token)])

    def _convert_id_to_token(self, index: int) -> str:
        if 0 <= index < len(self._id_to_token):
            return self._id_to_token[index]
        return str(self.unk_token)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        ids = list(token_ids_0) + [self.eos_token_id]
        if token_ids_1 is not None:
            ids += list(token_ids_1) + [self.eos_token_id]
        return ids

    def get_special_tokens_mask(
        self,
        token_ids_0: list[int],
        token_ids_1: list[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        if already_has_special_tokens:
            special = set(self.all_special_ids)
            return [1 if t in special else 0 for t in token_ids_0]
        mask = [0] * len(token_ids_0) + [1]
        if token_ids_1 is not None:
            mask += [0] * len(token_ids_1) + [1]
        return mask

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        """Write `semantic_ids.json`: layout settings, item ids (JSON int or str) and their semantic IDs."""
        if not os.path.isdir(save_directory):
            raise ValueError(f"Vocabulary path ({save_directory}) should be a directory")
        name = (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILES_NAMES["catalogue_file"]
        path = os.path.join(save_directory, name)
        payload = {
            "format": CATALOGUE_FORMAT,
            "version": CATALOGUE_FORMAT_VERSION,
            "codebook_sizes": self.codebook_sizes,
            "num_user_buckets": self.num_user_buckets,
            "item_ids": self._item_ids,
            "semantic_ids": [list(s) for s in self._semantic_ids],
        }
        fd, tmp = tempfile.mkstemp(dir=save_directory, prefix=".semantic_ids.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(payload, f, ensure_ascii=False, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        return (path,)


__all__ = ["SemanticIDTokenizer", "UnknownItemError", "catalogue_fingerprint"]
