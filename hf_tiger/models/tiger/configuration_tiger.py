"""TigerConfig: T5 hyperparameters plus the semantic-ID vocabulary layout and the catalogue size.

This file ships as Hub remote code: it imports only transformers and the standard library.
"""

from __future__ import annotations

import math
from typing import Any

from transformers import T5Config
from transformers.utils import logging

logger = logging.get_logger(__name__)

NUM_SPECIAL_TOKENS = 3  # <pad> = 0 (decoder start), </s> = 1, <unk> = 2; see tokenization_tiger.py


class TigerConfig(T5Config):
    r"""
    Configuration of [`TigerForConditionalGeneration`]: a T5 encoder-decoder over semantic-ID tokens.

    Defaults follow the TIGER paper (Rajput et al., 2023): 4 encoder and 4 decoder layers, 6 heads of
    dimension 64, model width 128, feed-forward 1024, dropout 0.1. Build it from a tokenizer with
    [`TigerConfig.from_tokenizer`] so that the vocabulary layout matches.

    Args:
        num_levels (`int`, *optional*):
            Semantic-ID levels including the collision level; defaults to `len(codebook_sizes)` (or 4).
        codebook_sizes (`list[int]`, *optional*, defaults to `[256] * num_levels`):
            Codebook size of each level (collision level last).
        level_offsets (`list[int]`, *optional*):
            Token id of code 0 of each level; defaults to consecutive ranges after the special and user tokens.
        num_user_buckets (`int`, *optional*, defaults to 2000): number of hashed user tokens.
        catalogue_size (`int`, *optional*, defaults to 0):
            Rows of the model's `catalogue` buffer (kept in sync by `set_catalogue`, so `from_pretrained` builds
            a buffer of the right shape).
        max_history (`int`, *optional*, defaults to 20): most recent history items the model is fed.
        default_num_beams (`int`, *optional*, defaults to 20): beams used by `recommend` when not given.
        item_mapping_fingerprint (`str`, *optional*), item_mapping_size (`int`, *optional*, defaults to 0):
            fingerprint of the tokenizer's first `item_mapping_size` items (item id -> semantic ID), set by
            `from_tokenizer` / `set_catalogue(tokenizer)`; a tokenizer that maps these items differently is refused.
        vocab_size (`int`, *optional*, defaults to 0): 0 means the end of the last level's token range.
        decoder_start_token_id (`int`, *optional*, defaults to 0): `<pad>`, as in T5.
        attention_dropout_rate (`float`, *optional*):
            Dropout on the attention probabilities; `None` means `dropout_rate` (T5's behaviour). 0 keeps dropout
            on the hidden states only: on CPU the attention-probability masks (batch x heads x length x length
            random draws per layer) cost about a third of a training step of the small models.
        causal_encoder (`bool`, *optional*, defaults to `False`):
            Causal encoder self-attention: each history token sees only itself and the tokens before it, and a
            `</s>` is seen by no other token. The encoding of a history prefix then does not depend on what follows
            it, so training can share one encoder pass among all the prefixes of a user's sequence (the
            `user_sequences` training rows, see `TigerForConditionalGeneration.forward`). T5 and the TIGER paper
            use a bidirectional encoder (`False`).
        num_item_embeddings (`int`, *optional*, defaults to 0):
            Items with a learned item-ID embedding (0: none, the paper's TIGER). Each is a `d_model` vector, zero at
            initialisation, added to the embeddings of all of the item's semantic-ID tokens in the encoder input, so
            the model can store what it learns about one item (e.g. which items follow it) in a place of its own
            instead of composing it from shared code embeddings. Which semantic IDs own a vector is fixed by the
            first catalogue the model is given (`set_catalogue`); items added later (cold start) get none and are
            read from their semantic ID alone. The decoder and the generated semantic IDs are unchanged.
        item_embedding_scale (`float`, *optional*, defaults to 1.0):
            Factor on the item-ID vectors where they are added. Adam moves a parameter about the learning rate per
            step whatever its gradient's size, so vectors trained from zero stay far smaller than T5's token
            embeddings (standard deviation 1 per dimension) unless scaled; a factor `s` is a learning rate `s` times
            higher for these vectors.
        item_embedding_init_std (`float`, *optional*, defaults to 0.0):
            Standard deviation of the item-ID vectors at initialisation (0: zero, the model starts as the plain
            TIGER; 1: the scale of T5's token embeddings, each item starting with a random identity of its own).
        num_prefix_embeddings (`int`, *optional*, defaults to 0):
            Semantic-ID prefixes (trie nodes: every distinct first 1, 2, ..., `num_levels` tokens of a catalogue
            item) with a learned *output* vector (0: none, the paper's TIGER). The logit of token `t` after the
            generated prefix `p` gains `h . v[p + t]` (`h`: the decoder output that `lm_head` reads), so the model
            scores a next item by a free vector of the item (and of each of its prefixes), as SASRec does, on top of
            the shared code embeddings. Zero at initialisation (the model starts as the plain TIGER). Which
            prefixes own a vector is fixed by the first catalogue the model is given (`set_catalogue`); prefixes
            that appear later (cold start) get none.
        prefix_embedding_scale (`float`, *optional*, defaults to 1.0):
            Factor on the prefix output vectors (see `item_embedding_scale`).
        kwargs: any [`T5Config`] argument (`d_model`, `num_layers`, `num_heads`, `d_ff`, `dropout_rate`, ...).

    Example:

    ```python
    >>> from hf_tiger import TigerConfig
    >>> config = TigerConfig(codebook_sizes=[8, 8, 4], num_user_buckets=10, d_model=32, num_layers=2)
    >>> config.vocab_size, config.level_offsets
    (33, [13, 21, 29])

    ```
    """

    model_type = "tiger"

    vocab_size: int = 0  # 0 = derive from the level ranges (T5's strict typing forbids None)
    d_model: int = 128
    d_kv: int = 64
    d_ff: int = 1024
    num_layers: int = 4
    num_heads: int = 6
    dropout_rate: float | int = 0.1
    decoder_start_token_id: int | None = 0
    num_levels: int | None = None
    codebook_sizes: list[int] | None = None
    level_offsets: list[int] | None = None
    num_user_buckets: int = 2000
    catalogue_size: int = 0
    max_history: int = 20
    default_num_beams: int = 20
    item_mapping_fingerprint: str | None = None
    item_mapping_size: int = 0
    attention_dropout_rate: float | None = None
    causal_encoder: bool = False
    num_item_embeddings: int = 0
    item_embedding_scale: float = 1.0
    item_embedding_init_std: float = 0.0
    num_prefix_embeddings: int = 0
    prefix_embedding_scale: float = 1.0

    def __post_init__(self, **kwargs):
        if self.codebook_sizes is None:
            self.codebook_sizes = [256] * (self.num_levels if self.num_levels is not None else 4)
        self.codebook_sizes = [int(s) for s in self.codebook_sizes]
        if self.num_levels is None:
            self.num_levels = len(self.codebook_sizes)
        if self.level_offsets is None:
            offsets, start = [], NUM_SPECIAL_TOKENS + int(self.num_user_buckets)
            for size in self.codebook_sizes:
                offsets.append(start)
                start += size
            self.level_offsets = offsets
        self.level_offsets = [int(o) for o in self.level_offsets]
        if not self.vocab_size:
            self.vocab_size = max(o + s for o, s in zip(self.level_offsets, self.codebook_sizes))
        super().__post_init__(**kwargs)
        self._validate_tiger()

    def _validate_tiger(self) -> None:
        if self.attention_dropout_rate is not None and not 0.0 <= float(self.attention_dropout_rate) < 1.0:
            raise ValueError(f"attention_dropout_rate must be in [0, 1) or None, got {self.attention_dropout_rate}")
        if self.num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {self.num_levels}")
        if len(self.codebook_sizes) != self.num_levels:
            raise ValueError(
                f"codebook_sizes has {len(self.codebook_sizes)} entries but num_levels={self.num_levels}"
            )
        if any(s < 1 for s in self.codebook_sizes):
            raise ValueError(f"codebook_sizes must all be >= 1, got {self.codebook_sizes}")
        if len(self.level_offsets) != self.num_levels:
            raise ValueError(
                f"level_offsets has {len(self.level_offsets)} entries but num_levels={self.num_levels}"
            )
        ranges = sorted(
            (o, o + s, level) for level, (o, s) in enumerate(zip(self.level_offsets, self.codebook_sizes))
        )
        for (_, end, level), (start, _, next_level) in zip(ranges, ranges[1:]):
            if start < end:
                raise ValueError(
                    f"level_offsets: the token ranges of levels {level} and {next_level} overlap"
                )
        if ranges[0][0] < 0 or ranges[-1][1] > self.vocab_size:
            raise ValueError(
                f"vocab_size={self.vocab_size} does not hold the level token ranges (level_offsets="
                f"{self.level_offsets}, codebook_sizes={self.codebook_sizes})"
            )
        for name in ("pad_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, name, None)
            if isinstance(value, int) and any(start <= value < end for start, end, _ in ranges):
                raise ValueError(f"{name}={value} falls inside a semantic-ID token range")
        for name, minimum in (
            ("num_user_buckets", 0),
            ("catalogue_size", 0),
            ("max_history", 1),
            ("default_num_beams", 1),
            ("num_item_embeddings", 0),
            ("num_prefix_embeddings", 0),
        ):
            if int(getattr(self, name)) < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {getattr(self, name)}")
        if float(self.item_embedding_init_std) < 0 or not math.isfinite(float(self.item_embedding_scale)):
            raise ValueError(
                f"item_embedding_init_std must be >= 0 and item_embedding_scale finite, got "
                f"{self.item_embedding_init_std} and {self.item_embedding_scale}"
            )
        if self.num_item_embeddings and math.prod(self.codebook_sizes) >= 2**62:
            raise ValueError(
                f"num_item_embeddings needs semantic IDs that pack into one int64 key; codebook_sizes "
                f"{self.codebook_sizes} span {math.prod(self.codebook_sizes)} IDs"
            )
        if not math.isfinite(float(self.prefix_embedding_scale)):
            raise ValueError(f"prefix_embedding_scale must be finite, got {self.prefix_embedding_scale}")
        if self.num_prefix_embeddings and math.prod(s + 1 for s in self.codebook_sizes) >= 2**62:
            raise ValueError(
                f"num_prefix_embeddings needs semantic-ID prefixes that pack into one int64 key; codebook_sizes "
                f"{self.codebook_sizes} are too large"
            )

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, **kwargs) -> TigerConfig:
        """Config whose vocabulary layout and catalogue size match a `SemanticIDTokenizer`.

        Args:
            tokenizer ([`SemanticIDTokenizer`]): the tokenizer the model will be trained with.
            kwargs: T5 sizes (`d_model`, `num_layers`, `num_heads`, `d_ff`, ...) and other config fields.

        Returns:
            [`TigerConfig`]
        """
        layout = {
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "decoder_start_token_id": tokenizer.pad_token_id,
            "num_levels": tokenizer.num_levels,
            "codebook_sizes": list(tokenizer.codebook_sizes),
            "level_offsets": list(tokenizer.level_offsets),
            "num_user_buckets": tokenizer.num_user_buckets,
            "catalogue_size": tokenizer.catalogue_size,
            "max_history": tokenizer.max_history,
            "item_mapping_fingerprint": tokenizer.item_mapping_fingerprint(),
            "item_mapping_size": tokenizer.catalogue_size,
        }
        clashes = sorted(
            k for k in kwargs if k in layout and k not in ("catalogue_size", "max_history", "item_mapping_size")
        )
        if clashes:
            raise ValueError(f"{clashes} are set by the tokenizer's vocabulary layout; do not pass them")
        layout.update(kwargs)
        return cls(**layout)


__all__ = ["TigerConfig"]
