"""TigerForConditionalGeneration: T5 over semantic-ID tokens whose generate() returns only real, distinct items.

This file ships as Hub remote code: it imports only torch, transformers, the standard library and the files of
this folder (relative imports), so a saved model loads with `trust_remote_code=True` without hf_tiger.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import GenerationConfig, LogitsProcessorList, T5ForConditionalGeneration
from transformers import initialization as init
from transformers.generation.utils import GenerateBeamEncoderDecoderOutput
from transformers.models.t5.modeling_t5 import T5Attention
from transformers.utils import logging

from .configuration_tiger import TigerConfig
from .generation_tiger import (
    TransitionPrior,
    TrieConstrainedLogitsProcessor,
    catalogue_index_for,
    inference_autocast_dtype,
    tiger_beam_search,
)
from .tokenization_tiger import catalogue_fingerprint

logger = logging.get_logger(__name__)

# Settings that would turn the pinned beam search into something else (sampling, penalties, forced tokens, ...):
# generate() resets them to these neutral values, with a warning when one was set.
_NEUTRAL_GENERATION_SETTINGS = {
    "do_sample": False,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "min_p": None,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "sequence_bias": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "exponential_decay_length_penalty": None,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "penalty_alpha": None,
    "guidance_scale": None,
    "min_length": 0,
    "min_new_tokens": None,
    "renormalize_logits": False,
    "watermarking_config": None,
}
# Decided by generate() itself in constrained mode.
_PINNED_GENERATION_SETTINGS = (
    "num_beams",
    "num_return_sequences",
    "max_new_tokens",
    "max_length",
    "early_stopping",
)


def _keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """Bernoulli(1 - p) keep mask from 16-bit uniform draws: random 64-bit words cut into their three low 16-bit
    halves (the top half of `random_()`'s int64 is not uniform), about 10x cheaper on CPU than `bernoulli_`."""
    count = math.prod(shape)
    words = torch.empty(-(-count // 3), dtype=torch.int64, device=device).random_()
    halves = words.view(torch.int16).view(-1, 4)[:, :3].reshape(-1)[:count]
    threshold = round(p * 65536) - 32768  # P(uniform int16 >= threshold) = 1 - p (to 1.6e-5)
    return (halves >= threshold).view(shape)


class TigerDropout(nn.Dropout):
    """`nn.Dropout` whose CPU mask comes from 16-bit uniform draws instead of `bernoulli_`.

    Same expectation and scaling as `nn.Dropout` (keep with probability `1 - p`, scale kept values by
    `1 / (1 - p)`); the keep probability is exact to 1.6e-5. On CPU, `bernoulli_` draws one 32-bit variate per
    element and took about a third of a training step of a small TIGER; this draws a third as many 64-bit words.
    On other devices (and in eval mode, or with `p == 0`) it is `nn.Dropout`.
    """

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or hidden_states.device.type != "cpu":
            return super().forward(hidden_states)
        if self.p == 1.0:
            return hidden_states * 0.0
        keep = _keep_mask(hidden_states.shape, self.p, hidden_states.device)
        return hidden_states * (keep.to(hidden_states.dtype) * (1.0 / (1.0 - self.p)))


def causal_encoder_mask(
    input_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    shape: tuple[int, int],
    eos_token_id: int | None,
    device: torch.device,
) -> torch.Tensor:
    """Encoder self-attention of a causal TIGER encoder: `torch.BoolTensor` of shape `(batch, length, length)`.

    Position `q` may attend to key `k` when `k <= q`, `k` is not padding, and `k` is not a `</s>` unless `k == q`.
    The last rule lets one pass over `[item 1 tokens, </s>, item 2 tokens, </s>, ...]` give every `</s>` the encoding
    that the history ending just before it gets alone (`[item tokens ..., </s>]`, as the tokenizer writes it).
    """
    length = shape[1]
    keys = (
        torch.ones(shape, dtype=torch.bool, device=device) if attention_mask is None else attention_mask.to(torch.bool)
    )
    if input_ids is not None and eos_token_id is not None:
        keys = keys & (input_ids != eos_token_id)
    positions = torch.arange(length, device=device)
    earlier = positions[None, :] < positions[:, None]  # [q, k]: k strictly before q
    itself = positions[None, :] == positions[:, None]
    return (earlier[None] & keys[:, None, :]) | itself[None]


class TigerItemEmbeddings(nn.Embedding):
    """The learned item-ID vectors of `TigerConfig.num_item_embeddings` (zero at initialisation)."""


class TigerPrefixEmbeddings(nn.Embedding):
    """Output vectors of semantic-ID prefixes (`TigerConfig.num_prefix_embeddings`); the last row is padding."""


def semantic_id_prefix_keys(
    table: torch.Tensor, level_offsets: Sequence[int], codebook_sizes: Sequence[int]
) -> torch.Tensor:
    """Sorted distinct int64 keys of every prefix (first 1, ..., num_levels tokens) of the semantic IDs in `table`.

    A prefix of `d` tokens is packed in mixed radix `codebook_size + 1` per level: digit `code + 1` for its levels,
    0 for the levels it does not reach, so prefixes of different lengths never share a key.

    Args:
        table (`torch.LongTensor` of shape `(num_items, num_levels)`): token ids (e.g. `tok.catalogue_token_ids()`).
        level_offsets, codebook_sizes (`Sequence[int]`): the vocabulary layout (`TigerConfig`).
    """
    low = torch.tensor(list(level_offsets), device=table.device)
    digits = (table - low + 1) * _prefix_strides(codebook_sizes, table.device)
    return torch.unique(digits.cumsum(-1).reshape(-1))


def _prefix_strides(codebook_sizes: Sequence[int], device: torch.device) -> torch.Tensor:
    sizes = [int(size) + 1 for size in codebook_sizes]
    return torch.tensor([math.prod(sizes[level + 1 :]) for level in range(len(sizes))], device=device)


class TigerForConditionalGeneration(T5ForConditionalGeneration):
    r"""
    TIGER (Rajput et al., 2023): a T5 encoder-decoder that reads a user's history as semantic-ID tokens and
    generates the next item's semantic ID.

    Encoder input: `[user token] + semantic-ID tokens of each history item + [</s>]`; labels: the target item's
    `num_levels` semantic-ID tokens (collision level included, no `</s>`), see [`SemanticIDTokenizer`].

    The model stores the catalogue: the persistent buffer `catalogue` (`torch.LongTensor` of shape
    `(config.catalogue_size, config.num_levels)`, token ids, row i = item i of the tokenizer) is saved with the
    weights, so a model loaded on its own still only recommends real items. Replace it with
    [`~TigerForConditionalGeneration.set_catalogue`] (cold-start items, in-stock filtering).

    [`~TigerForConditionalGeneration.generate`] is trie-constrained beam search by default, and
    [`~TigerForConditionalGeneration.recommend`] maps raw item ids in to ranked item ids out.

    Args:
        config ([`TigerConfig`]): model configuration (see [`TigerConfig.from_tokenizer`]).

    Example:

    ```python
    >>> import torch
    >>> from hf_tiger import SemanticIDTokenizer, TigerConfig, TigerForConditionalGeneration
    >>> codes = torch.randint(0, 8, (50, 2), generator=torch.Generator().manual_seed(0))
    >>> tok = SemanticIDTokenizer.from_codes(codes, item_ids=range(50), codebook_size=8, num_user_buckets=10)
    >>> model = TigerForConditionalGeneration(TigerConfig.from_tokenizer(tok, d_model=32, d_ff=64, num_layers=2,
    ...                                                                  num_heads=2, d_kv=16))
    >>> model.set_catalogue(tok.catalogue_token_ids())
    >>> recs = model.recommend([[1, 2, 3], [7]], tokenizer=tok, top_k=5, num_beams=10)
    >>> [len(r) for r in recs]
    [5, 5]

    ```
    """

    config_class = TigerConfig

    def __init__(self, config: TigerConfig):
        super().__init__(config)
        # Zeros are no valid semantic ID: generate() refuses to run until the catalogue is set or loaded.
        self.register_buffer(
            "catalogue",
            torch.zeros(config.catalogue_size, config.num_levels, dtype=torch.long),
            persistent=True,
        )
        self._tokenizer_checks: dict[tuple[str, str], bool] = {}
        self.set_attention_dropout(config.attention_dropout_rate)
        self._use_fast_dropout()
        num_items = int(getattr(config, "num_item_embeddings", 0) or 0)
        if num_items:
            # row num_items: no learned vector (padding, other tokens, items outside the first catalogue)
            self.item_embeddings = TigerItemEmbeddings(num_items + 1, config.d_model, padding_idx=num_items)
            self._init_item_embeddings(self.item_embeddings)
            # packed semantic IDs (see _item_keys) of the items owning rows 0..num_items-1, sorted; -1 until the
            # first set_catalogue
            self.register_buffer(
                "item_embedding_keys", torch.full((num_items,), -1, dtype=torch.long), persistent=True
            )
        if getattr(config, "causal_encoder", False) or num_items:
            self.encoder.register_forward_pre_hook(self._encoder_inputs, with_kwargs=True)
        num_prefixes = int(getattr(config, "num_prefix_embeddings", 0) or 0)
        self._decoder_prefix_ids: torch.Tensor | None = None  # set by forward() for the lm_head hook
        if num_prefixes:
            # row num_prefixes: padding (no such prefix, prefixes outside the first catalogue)
            self.prefix_embeddings = TigerPrefixEmbeddings(num_prefixes + 1, config.d_model, padding_idx=num_prefixes)
            init.zeros_(self.prefix_embeddings.weight)
            # keys (semantic_id_prefix_keys) of the prefixes owning rows 0..num_prefixes-1; -1 until the first
            # set_catalogue
            self.register_buffer(
                "prefix_embedding_keys", torch.full((num_prefixes,), -1, dtype=torch.long), persistent=True
            )
            self.lm_head.register_forward_hook(self._add_prefix_logits)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, TigerItemEmbeddings):
            self._init_item_embeddings(module)
        elif isinstance(module, TigerPrefixEmbeddings):
            init.zeros_(module.weight)
        elif module is self:
            # keys that were not loaded (a checkpoint saved without the vectors): unset until the next set_catalogue
            for name in ("item_embedding_keys", "prefix_embedding_keys"):
                if hasattr(self, name):
                    init.constant_(getattr(self, name), -1)

    def _init_item_embeddings(self, module: nn.Module) -> None:
        std = float(getattr(self.config, "item_embedding_init_std", 0.0) or 0.0)
        if std > 0:
            init.normal_(module.weight, mean=0.0, std=std)
        else:
            init.zeros_(module.weight)
        with torch.no_grad():
            module.weight[module.padding_idx].zero_()

    def _encoder_inputs(self, encoder: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Forward pre-hook of the encoder: the causal mask (`config.causal_encoder`) and the item-ID embeddings
        (`config.num_item_embeddings`) added to the token embeddings of the input items."""
        names = ("input_ids", "attention_mask")
        kwargs = {**dict(zip(names, args)), **kwargs}
        if getattr(self.config, "causal_encoder", False):
            kwargs = self._causal_encoder_inputs(kwargs)
        input_ids = kwargs.get("input_ids")
        if getattr(self.config, "num_item_embeddings", 0) and input_ids is not None:
            if kwargs.get("inputs_embeds") is not None:
                raise ValueError("pass input_ids or inputs_embeds to the encoder, not both")
            embeds = encoder.embed_tokens(input_ids)
            vectors = self._item_vectors(input_ids)
            kwargs["inputs_embeds"] = embeds if vectors is None else embeds + vectors.to(embeds.dtype)
            kwargs["input_ids"] = None
        return args[len(names) :], kwargs

    def _item_keys(self, table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Semantic IDs `(..., num_levels)` of token ids -> (one int64 key each, whether each is a valid semantic ID)."""
        sizes = self.config.codebook_sizes
        codes = table - torch.tensor(self.config.level_offsets, device=table.device)
        valid = self._in_level_ranges(table).all(-1)
        key = torch.zeros(table.shape[:-1], dtype=torch.long, device=table.device)
        for level, size in enumerate(sizes):
            key = key * int(size) + codes[..., level].clamp(min=0, max=int(size) - 1)
        return key, valid

    def _item_vectors(self, input_ids: torch.Tensor) -> torch.Tensor | None:
        """`(batch, length, d_model)`: each input item's learned vector at all of its semantic-ID tokens, zero
        elsewhere (`None` for inputs shorter than one item). An item is `num_levels` consecutive tokens of levels
        0, 1, ... in order; the level ranges are disjoint, so no other window of tokens reads as one."""
        levels = self.config.num_levels
        if input_ids.shape[1] < levels:
            return None
        key, valid = self._item_keys(input_ids.unfold(1, levels, 1))  # (batch, length - levels + 1)
        keys = self.item_embedding_keys
        row = torch.searchsorted(keys, key).clamp(max=keys.shape[0] - 1)
        rows = torch.where(valid & (keys[row] == key), row, keys.shape[0])
        starts = self.item_embeddings(rows)
        scale = float(getattr(self.config, "item_embedding_scale", 1.0))
        starts = starts if scale == 1.0 else starts * scale
        return sum(nn.functional.pad(starts, (0, 0, level, levels - 1 - level)) for level in range(levels))

    def _set_item_embedding_keys(self, table: torch.Tensor) -> None:
        """Give the item-ID embedding rows to the items of the model's first catalogue (`table`: token ids)."""
        if not getattr(self.config, "num_item_embeddings", 0) or bool((self.item_embedding_keys >= 0).any()):
            return
        if table.shape[0] != self.config.num_item_embeddings:
            raise ValueError(
                f"the model has item-ID embeddings for {self.config.num_item_embeddings} items, but the first "
                f"catalogue it is given holds {table.shape[0]}: build the config from the same tokenizer "
                "(num_item_embeddings=tokenizer.catalogue_size)"
            )
        key, _ = self._item_keys(table.to(self.item_embedding_keys.device))
        self.item_embedding_keys = torch.sort(key).values

    def _set_prefix_embedding_keys(self, table: torch.Tensor) -> None:
        """Give the prefix output vectors to the semantic-ID prefixes of the model's first catalogue (`table`)."""
        if not getattr(self.config, "num_prefix_embeddings", 0) or bool((self.prefix_embedding_keys >= 0).any()):
            return
        keys = semantic_id_prefix_keys(
            table.to(self.prefix_embedding_keys.device), self.config.level_offsets, self.config.codebook_sizes
        )
        if keys.shape[0] != self.config.num_prefix_embeddings:
            raise ValueError(
                f"the model has output vectors for {self.config.num_prefix_embeddings} semantic-ID prefixes, but the "
                f"first catalogue it is given has {keys.shape[0]}: build the config from the same catalogue "
                "(num_prefix_embeddings=len(semantic_id_prefix_keys(tokenizer.catalogue_token_ids(), ...)))"
            )
        self.prefix_embedding_keys = keys

    def _decoder_prefix_keys(self, decoder_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(batch, length)` decoder token ids -> the key (`semantic_id_prefix_keys`) and the length of the
        semantic-ID prefix each position ends: its semantic-ID tokens since the last other token (the decoder start
        token; a packed user-sequence row starts every target with one)."""
        low = torch.tensor(self.config.level_offsets, device=decoder_ids.device)
        size = torch.tensor(self.config.codebook_sizes, device=decoder_ids.device)
        stride = _prefix_strides(self.config.codebook_sizes, decoder_ids.device)
        in_level = (decoder_ids[..., None] >= low) & (decoder_ids[..., None] < low + size)
        semantic = in_level.any(-1)
        level = in_level.to(torch.uint8).argmax(-1)
        digit = torch.where(semantic, (decoder_ids - low[level] + 1) * stride[level], 0)
        key, depth = digit.cumsum(-1), semantic.long().cumsum(-1)
        positions = torch.arange(decoder_ids.shape[-1], device=decoder_ids.device).expand_as(decoder_ids)
        reset = torch.where(semantic, -1, positions).cummax(-1).values  # last start token at or before
        at, started = reset.clamp(min=0), reset >= 0
        key = key - torch.where(started, key.gather(-1, at), 0)
        depth = depth - torch.where(started, depth.gather(-1, at), 0)
        return key, depth

    def prefix_logits(self, hidden: torch.Tensor, decoder_ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """The prefix output vectors' share of the next-token logits (`config.num_prefix_embeddings`).

        Args:
            hidden (`torch.Tensor` of shape `(batch, steps, d_model)`): what `lm_head` reads at the last `steps`
                decoder positions.
            decoder_ids (`torch.LongTensor` of shape `(batch, length)`, `length >= steps`): every decoder token id
                so far (start token included).
            vocab_size (`int`): width of the logits.

        Returns:
            `torch.Tensor` of shape `(batch, steps, vocab_size)`: `scale * h . v[p + t]` at each token `t` that
            extends the position's prefix `p` to a prefix owning a vector, 0 elsewhere.
        """
        steps = hidden.shape[-2]
        key, depth = (x[..., -steps:] for x in self._decoder_prefix_keys(decoder_ids))
        device = hidden.device
        size = torch.tensor(self.config.codebook_sizes, device=device)
        low = torch.tensor(self.config.level_offsets, device=device)
        stride = _prefix_strides(self.config.codebook_sizes, device)
        level = depth.clamp(max=self.config.num_levels - 1)
        relative = torch.arange(int(size.max()), device=device)
        candidate = key[..., None] + (relative + 1) * stride[level][..., None]
        valid = (depth < self.config.num_levels)[..., None] & (relative < size[level][..., None])
        keys = self.prefix_embedding_keys
        row = torch.searchsorted(keys, candidate).clamp(max=keys.shape[0] - 1)
        rows = torch.where(valid & (keys[row] == candidate), row, keys.shape[0])
        vectors = self.prefix_embeddings(rows).to(hidden.dtype)  # (batch, steps, width, d_model)
        scores = torch.matmul(vectors, hidden[..., None]).squeeze(-1)
        scale = float(getattr(self.config, "prefix_embedding_scale", 1.0))
        if scale != 1.0:
            scores = scores * scale
        columns = torch.where(valid, low[level][..., None] + relative, vocab_size)
        logits = scores.new_zeros((*scores.shape[:-1], vocab_size + 1))
        return logits.scatter_add(-1, columns, scores)[..., :vocab_size]

    def _add_prefix_logits(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        """Forward hook of `lm_head`: adds `prefix_logits` for the decoder ids `forward` was given."""
        if self._decoder_prefix_ids is None:
            raise ValueError(
                "a model with prefix output vectors (config.num_prefix_embeddings) needs the decoder token ids to "
                "score the next token: call the model itself (forward / generate), not lm_head alone"
            )
        extra = self.prefix_logits(args[0], self._decoder_prefix_ids.to(output.device), output.shape[-1])
        return output + extra.to(output.dtype)

    def prepare_inputs_for_generation(self, input_ids, *args, **kwargs):
        inputs = super().prepare_inputs_for_generation(input_ids, *args, **kwargs)
        if getattr(self.config, "num_prefix_embeddings", 0):
            inputs["decoder_prefix_ids"] = input_ids  # every token so far: the cache hides the prefix otherwise
        return inputs

    def _causal_encoder_inputs(self, kwargs: dict) -> dict:
        """The encoder's keyword arguments with the padding mask replaced by [`causal_encoder_mask`].

        In a user sequence (`</s>` after every item) each `</s>` is skipped when counting positions, so every
        pair of positions a query may attend to has the relative distance (hence T5's relative position bias) it
        has in the history's own encoder input; the difference to the bias of plain positions goes into the mask.
        """
        input_ids, embeds = kwargs.get("input_ids"), kwargs.get("inputs_embeds")
        reference = input_ids if input_ids is not None else embeds
        mask = kwargs.get("attention_mask")
        if reference is None or (mask is not None and mask.ndim == 4):  # no input (T5 raises) or already 4D
            return kwargs
        length = reference.shape[1]
        eos = self.config.eos_token_id
        allowed = causal_encoder_mask(input_ids, mask, tuple(reference.shape[:2]), eos, reference.device)
        bias = None
        if input_ids is not None and eos is not None:
            counted = (input_ids != eos).long()
            real = counted.bool() if mask is None else counted.bool() & mask.to(torch.bool)
            # a </s> followed by an item token: a user sequence, not a history (whose </s> comes last)
            if bool(((input_ids[:, :-1] == eos) & real[:, 1:]).any()):
                positions = counted.cumsum(1) - counted  # number of non-</s> tokens before each token
                attention = self.encoder.block[0].layer[0].SelfAttention
                bucket = attention._relative_position_bucket(
                    positions[:, None, :] - positions[:, :, None],
                    bidirectional=True,
                    num_buckets=attention.relative_attention_num_buckets,
                    max_distance=attention.relative_attention_max_distance,
                )
                own = attention.relative_attention_bias(bucket).permute(0, 3, 1, 2)  # [B, H, q, k]
                bias = own - attention.compute_bias(length, length, device=reference.device)
        kwargs["attention_mask"] = self._attention_mask_4d(allowed, bias=bias)
        return kwargs

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: Any = None,
        cache: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        cross_attention_mask: torch.Tensor | None = None,
        **kwargs,
    ):
        r"""
        `T5ForConditionalGeneration.forward`, plus training on user sequences with a causal encoder.

        With `cross_attention_mask`, each row of `input_ids` is a whole user sequence (`item tokens + </s>` per
        history item, see `hf_tiger.training.data.encode_user_sequences`) and its decoder row packs all its
        targets: `decoder_input_ids` / `labels` are the targets' decoder inputs / labels one after the other, each
        target's tokens attend only to each other (`decoder_attention_mask`) and to the encoder positions of the
        target's history and the `</s>` closing it (`cross_attention_mask`). The encoder (and each layer's
        cross-attention keys and values) runs once per sequence instead of once per prefix, and every target gets
        exactly what its history gets alone: `config.causal_encoder` makes a prefix's encoding independent of the
        items after it, and T5's relative positions do not change inside a target's block.
        [`TigerDataCollator`] builds these inputs.

        Args:
            decoder_attention_mask (`torch.BoolTensor` of shape `(batch, decoder_length, decoder_length)` with
                `cross_attention_mask`, else T5's `(batch, decoder_length)`): which decoder positions each one sees.
            cross_attention_mask (`torch.BoolTensor` of shape `(batch, decoder_length, sequence_length)`,
                *optional*): the encoder positions each decoder position may attend to.
            decoder_prefix_ids (`torch.LongTensor` of shape `(batch, length)`, *optional*): every decoder token id so
                far, when `decoder_input_ids` holds only the newest ones (decoding with a cache); used by the prefix
                output vectors (`config.num_prefix_embeddings`), which score a token by the prefix it extends.
                `generate` passes it.
        """
        prefix_ids = kwargs.pop("decoder_prefix_ids", None)
        if not getattr(self.config, "num_prefix_embeddings", 0):
            return self._forward(
                input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs, cache,
                inputs_embeds, decoder_inputs_embeds, labels, use_cache, cross_attention_mask, **kwargs,
            )
        if prefix_ids is None:
            past = cache if cache is not None else kwargs.get("past_key_values")
            if past is not None and hasattr(past, "get_seq_length") and past.get_seq_length() > 0:
                raise ValueError(
                    "with a decoder cache, a model with prefix output vectors needs decoder_prefix_ids (every "
                    "decoder token so far): the new tokens alone do not say which semantic-ID prefix they extend"
                )
            prefix_ids = decoder_input_ids
            if prefix_ids is None and labels is not None and decoder_inputs_embeds is None:
                prefix_ids = self._shift_right(labels)
            if prefix_ids is None:
                raise ValueError(
                    "a model with prefix output vectors needs the decoder token ids: pass decoder_input_ids or "
                    "labels (not decoder_inputs_embeds alone)"
                )
        self._decoder_prefix_ids = prefix_ids
        try:
            return self._forward(
                input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs, cache,
                inputs_embeds, decoder_inputs_embeds, labels, use_cache, cross_attention_mask, **kwargs,
            )
        finally:
            self._decoder_prefix_ids = None

    def _forward(
        self, input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs, cache,
        inputs_embeds, decoder_inputs_embeds, labels, use_cache, cross_attention_mask, **kwargs,
    ):
        if cross_attention_mask is None:
            return super().forward(
                input_ids=input_ids,
                attention_mask=attention_mask,
                decoder_input_ids=decoder_input_ids,
                decoder_attention_mask=decoder_attention_mask,
                encoder_outputs=encoder_outputs,
                cache=cache,
                inputs_embeds=inputs_embeds,
                decoder_inputs_embeds=decoder_inputs_embeds,
                labels=labels,
                use_cache=use_cache,
                **kwargs,
            )
        if not getattr(self.config, "causal_encoder", False):
            raise ValueError(
                "cross_attention_mask (one encoder pass shared by the prefixes of a user sequence) needs a causal "
                "encoder: with config.causal_encoder=False every history token sees the items after it"
            )
        if input_ids is None or decoder_input_ids is None or decoder_attention_mask is None:
            raise ValueError("user-sequence training needs input_ids, decoder_input_ids and decoder_attention_mask")
        batch, length = input_ids.shape
        steps = decoder_input_ids.shape[1]
        expected = {
            "decoder_input_ids": (decoder_input_ids.shape, (batch, steps)),
            "decoder_attention_mask": (decoder_attention_mask.shape, (batch, steps, steps)),
            "cross_attention_mask": (cross_attention_mask.shape, (batch, steps, length)),
        }
        for name, (shape, wanted) in expected.items():
            if tuple(shape) != wanted:
                raise ValueError(
                    f"{name} has shape {tuple(shape)}, expected {wanted} for input_ids of shape {(batch, length)} "
                    f"and {steps} decoder positions"
                )
        encoded = self.encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        return super().forward(
            attention_mask=self._attention_mask_4d(cross_attention_mask),
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=self._attention_mask_4d(decoder_attention_mask),
            encoder_outputs=encoded,
            decoder_inputs_embeds=decoder_inputs_embeds,
            labels=labels,
            use_cache=False,
            **kwargs,
        )

    def _attention_mask_4d(self, allowed: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """A `(batch, queries, keys)` keep-mask as the 4D mask the attention implementation takes as it is: boolean
        for sdpa, additive float for eager or when an additive `bias` (`(batch, heads, queries, keys)`) comes with it.
        """
        allowed = allowed.to(torch.bool)[:, None]
        implementation = self.config._attn_implementation
        if implementation not in ("sdpa", "eager"):
            raise ValueError(
                f"causal_encoder and user-sequence training support the 'sdpa' and 'eager' attention "
                f"implementations, not {implementation!r}"
            )
        if implementation == "sdpa" and bias is None:
            return allowed
        dtype = self.encoder.embed_tokens.weight.dtype
        base = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device) if bias is None else bias.to(dtype)
        return base.masked_fill(~allowed, torch.finfo(dtype).min)

    def _use_fast_dropout(self) -> None:
        for module in list(self.modules()):
            for name, child in list(module.named_children()):
                if type(child) is nn.Dropout:
                    setattr(module, name, TigerDropout(child.p, inplace=child.inplace))

    def set_attention_dropout(self, rate: float | None) -> None:
        """Dropout on the attention probabilities of every attention layer (`None`: `config.dropout_rate`)."""
        self.config.attention_dropout_rate = rate
        rate = self.config.dropout_rate if rate is None else float(rate)
        for module in self.modules():
            if isinstance(module, T5Attention):
                module.dropout = rate

    # ------------------------------------------------------------------ catalogue

    def set_catalogue(self, catalogue: Any, tokenizer: Any = None) -> None:
        """Replace the catalogue of recommendable items (any size; `config.catalogue_size` follows).

        Args:
            catalogue (`torch.LongTensor` of shape `(num_items, num_levels)` or a [`SemanticIDTokenizer`]):
                token ids of the items' semantic IDs, e.g. `tok.catalogue_token_ids()` after `tok.add_items(...)`
                (cold start) or `tok.catalogue_token_ids()[in_stock]` (restrict recommendations). Row order is
                kept; rows must be distinct, valid semantic IDs of this model's vocabulary.
            tokenizer ([`SemanticIDTokenizer`], *optional*): the tokenizer the table comes from (implied when
                `catalogue` is a tokenizer). Its vocabulary layout is checked against the model first, and its item
                mapping becomes the one `check_tokenizer` expects from now on (e.g. after `tok.add_items`).
        """
        if hasattr(catalogue, "catalogue_token_ids"):
            tokenizer = catalogue
            catalogue = catalogue.catalogue_token_ids()
        if tokenizer is not None:
            self._check_layout(tokenizer)
        table = torch.as_tensor(catalogue)
        if table.is_floating_point() or table.dtype == torch.bool:
            raise ValueError(f"catalogue must hold integer token ids, got dtype {table.dtype}")
        if table.ndim != 2 or table.shape[1] != self.config.num_levels:
            raise ValueError(
                f"catalogue must have shape (num_items, num_levels={self.config.num_levels}), got {tuple(table.shape)}"
            )
        if table.shape[0] == 0:
            raise ValueError("catalogue must hold at least one item")
        table = table.to(device=self.catalogue.device, dtype=torch.long)
        bad = ~self._in_level_ranges(table)
        if bad.any():
            row, level = (int(v) for v in bad.nonzero()[0])
            low = self.config.level_offsets[level]
            raise ValueError(
                f"catalogue row {row} has token {int(table[row, level])} at level {level}, outside that level's "
                f"range [{low}, {low + self.config.codebook_sizes[level]}): pass token ids (tok.catalogue_token_ids()), "
                "not raw codes"
            )
        unique = torch.unique(table, dim=0)
        if unique.shape[0] != table.shape[0]:
            raise ValueError(f"catalogue holds {table.shape[0] - unique.shape[0]} duplicate semantic IDs")
        self._set_item_embedding_keys(table)
        self._set_prefix_embedding_keys(table)
        self.catalogue = table.contiguous()
        self.config.catalogue_size = int(table.shape[0])
        if tokenizer is not None:
            self.config.item_mapping_fingerprint = tokenizer.item_mapping_fingerprint()
            self.config.item_mapping_size = int(tokenizer.catalogue_size)

    @torch.no_grad()
    def init_semantic_id_embeddings_(self, codebooks: torch.Tensor, seed: int = 0) -> int:
        """Initialise the token embeddings of the semantic-ID levels from the RQ-VAE's codebook vectors.

        Each level's codebook (`codebook_size` vectors of width `latent_dim`) is mapped to `d_model` by one fixed
        random projection (shared by all levels, seeded), centred, and rescaled to the standard deviation of the
        embedding rows it replaces, so the model starts knowing which codes lie close together (items with similar
        text) at the scale T5's initialisation expects. The collision level (and any level beyond the codebooks)
        keeps its random initialisation. With tied word embeddings the output layer follows; an untied `lm_head`
        gets the same rows.

        Args:
            codebooks (`torch.Tensor` of shape `(levels, codebook_size, latent_dim)`): the RQ-VAE's codebooks,
                e.g. `rqvae.quantizer.codebooks`; `levels <= config.num_levels` and each level's size must equal
                the model's `codebook_sizes` for that level.
            seed (`int`, *optional*, defaults to 0): seed of the projection.

        Returns:
            `int`: the number of levels initialised.
        """
        codebooks = torch.as_tensor(codebooks).detach().float().cpu()
        if codebooks.ndim != 3:
            raise ValueError(
                f"codebooks must have shape (levels, codebook_size, latent_dim), got {tuple(codebooks.shape)}"
            )
        levels = int(codebooks.shape[0])
        if levels > self.config.num_levels:
            raise ValueError(f"{levels} codebook levels but the model has only {self.config.num_levels} levels")
        for level in range(levels):
            if int(codebooks.shape[1]) != int(self.config.codebook_sizes[level]):
                raise ValueError(
                    f"codebook size {codebooks.shape[1]} does not match the model's level {level} "
                    f"({self.config.codebook_sizes[level]} codes): the RQ-VAE is not the one the tokenizer was built from"
                )
        generator = torch.Generator().manual_seed(seed)
        projection = torch.randn(codebooks.shape[2], self.config.d_model, generator=generator)
        targets = [self.get_input_embeddings()]
        output = self.get_output_embeddings()
        if output is not None and output.weight.data_ptr() != targets[0].weight.data_ptr():
            targets.append(output)
        for level in range(levels):
            start = int(self.config.level_offsets[level])
            rows = slice(start, start + int(self.config.codebook_sizes[level]))
            vectors = codebooks[level] @ projection
            vectors = vectors - vectors.mean(dim=0, keepdim=True)
            for module in targets:
                weight = module.weight
                scale = weight[rows].float().std() / vectors.std().clamp(min=1e-12)
                weight[rows] = (vectors * scale).to(device=weight.device, dtype=weight.dtype)
        return levels

    def _has_catalogue(self) -> bool:
        return self.catalogue.shape[0] > 0 and bool(self._in_level_ranges(self.catalogue).all())

    def _in_level_ranges(self, table: torch.Tensor) -> torch.Tensor:
        low = torch.tensor(self.config.level_offsets, device=table.device)
        high = low + torch.tensor(self.config.codebook_sizes, device=table.device)
        return (table >= low) & (table < high)

    def catalogue_fingerprint(self) -> str:
        """SHA-256 of the `catalogue` buffer; equals `SemanticIDTokenizer.catalogue_fingerprint()` when they match."""
        return catalogue_fingerprint(self.catalogue)

    def _catalogue_index(self):
        if not self._has_catalogue():
            raise ValueError(
                "the model has no valid catalogue: call model.set_catalogue(tokenizer.catalogue_token_ids()) "
                "before generating (a freshly initialised model has none)"
            )
        return catalogue_index_for(
            self.catalogue,
            self.config.vocab_size,
            eos_token_id=self.config.eos_token_id,
            pad_token_id=self.config.pad_token_id,
            cache_owner=self,
        )

    # ------------------------------------------------------------------ generation

    def generate(
        self,
        inputs: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        logits_processor: LogitsProcessorList | None = None,
        constrained: bool = True,
        fast_beam_search: bool = True,
        item_prior: TransitionPrior | None = None,
        **kwargs,
    ):
        r"""
        Trie-constrained beam search over the model's catalogue (default), or plain transformers generation.

        With `constrained=True` the search is pinned: beam search (`do_sample=False`) with
        `num_beams = max(num_beams, num_return_sequences)`, exactly `num_levels` new tokens, and a
        [`TrieConstrainedLogitsProcessor`] so every returned sequence is a catalogue item and the
        `num_return_sequences` sequences of one input are distinct items. Settings that would change that
        (sampling, temperature/top-k/top-p, repetition penalties, forced or suppressed tokens, ...) are reset with a
        warning, whether they come from `model.generation_config`, `generation_config` or keyword arguments.

        When an input has fewer distinct catalogue items than `num_return_sequences` (catalogue smaller than the
        beam count), the missing rows come last and are *padding rows*: every token is `pad_token_id` and, in
        `sequences_scores`, the score is `-inf`; `tokenizer.decode_items` maps them to `None`.

        Args:
            inputs / input_ids (`torch.LongTensor` of shape `(batch_size, seq_len)`): encoder input ids.
            attention_mask (`torch.LongTensor` of shape `(batch_size, seq_len)`, *optional*).
            num_beams (`int`, *optional*): beam width; defaults to `generation_config.num_beams` when > 1, else
                `config.default_num_beams`; raised to `num_return_sequences` if smaller.
            num_return_sequences (`int`, *optional*, defaults to 1): items returned per input.
            generation_config (`GenerationConfig`, *optional*): base settings (pinned settings are overridden).
            logits_processor (`LogitsProcessorList`, *optional*): extra processors, applied after the trie mask
                (they may only remove items, e.g. to mask out already-seen items).
            constrained (`bool`, *optional*, defaults to `True`): `False` runs `T5ForConditionalGeneration.generate`
                unchanged (no catalogue, nothing pinned), e.g. for benchmarks.
            fast_beam_search (`bool`, *optional*, defaults to `True`): run the constrained search with
                `generation_tiger.tiger_beam_search` (same items, order and scores as transformers' beam search with
                the trie processor, several times faster: encoder and cross-attention keys/values computed once per
                input). `False`, extra `logits_processor`s, per-step outputs (`output_logits`,
                `output_attentions`, `output_hidden_states`) or model kwargs other than
                `attention_mask` / `encoder_outputs` use transformers' beam search with the trie processor. The fast
                search returns `sequences_scores` but no per-step `scores` (`None`).
            item_prior ([`~generation_tiger.TransitionPrior`], *optional*): a count prior fused into the ranking
                (items scored by ``log p(item) + weight * log P(item | last history item)``); needs the fast search
                and `input_ids`.
            kwargs: other `generate()` arguments (`return_dict_in_generate`, `output_scores`, ...).

        Returns:
            `torch.LongTensor` of shape `(batch_size * num_return_sequences, 1 + num_levels)` (decoder start token
            first), or a `ModelOutput` with `sequences` and `sequences_scores` (shape
            `(batch_size * num_return_sequences,)`, log-probability sum divided by `num_levels ** length_penalty`)
            when `return_dict_in_generate=True`.
        """
        if item_prior is not None and not constrained:
            raise ValueError("item_prior works with the constrained search only (constrained=True)")
        if not constrained:
            return super().generate(
                inputs, generation_config=generation_config, logits_processor=logits_processor, **kwargs
            )
        if kwargs.get("prefix_allowed_tokens_fn") is not None:
            raise ValueError(
                "prefix_allowed_tokens_fn replaces the catalogue constraint: pass constrained=False with it"
            )
        generation_config, model_kwargs = self._pinned_generation_config(generation_config, kwargs)
        return_dict = bool(generation_config.return_dict_in_generate)
        wants_scores = bool(generation_config.output_scores)
        fast_beam_search = fast_beam_search and not (
            generation_config.output_logits
            or generation_config.output_attentions
            or generation_config.output_hidden_states
            or logits_processor
        )
        generation_config.return_dict_in_generate = True
        generation_config.output_scores = True
        generation_config.output_logits = generation_config.num_beams == 1 or bool(
            generation_config.output_logits
        )

        index = self._catalogue_index()
        processors = LogitsProcessorList([TrieConstrainedLogitsProcessor(index, prompt_length=1)])
        processors.extend(logits_processor or [])
        if item_prior is not None and not (
            fast_beam_search and set(model_kwargs) <= {"input_ids", "attention_mask", "encoder_outputs", "use_cache"}
        ):
            raise ValueError(
                "item_prior is fused by the fast beam search only: leave fast_beam_search=True and do not ask for "
                "logits processors, per-step outputs or extra model inputs"
            )
        output = self._constrained_generate(
            inputs,
            generation_config,
            processors,
            index,
            fast_beam_search=fast_beam_search,
            item_prior=item_prior,
            **model_kwargs,
        )
        output = self._mark_padding_rows(output, index, generation_config)
        if not wants_scores:
            output.scores = None
        return output if return_dict else output.sequences

    def _pinned_generation_config(self, generation_config: GenerationConfig | None, kwargs: dict):
        """Merge model / passed / keyword generation settings, then pin beam search; returns (config, model kwargs)."""
        base = copy.deepcopy(generation_config if generation_config is not None else self.generation_config)
        if generation_config is not None:
            base.update(**self.generation_config.to_dict(), defaults_only=True)
        kwargs = dict(kwargs)
        pinned = {key: kwargs.pop(key) for key in _PINNED_GENERATION_SETTINGS if key in kwargs}
        neutral = {key: kwargs.pop(key) for key in _NEUTRAL_GENERATION_SETTINGS if key in kwargs}
        model_kwargs = base.update(**kwargs)
        overridden = []
        for key, value in _NEUTRAL_GENERATION_SETTINGS.items():
            current = neutral.get(key, getattr(base, key, None))
            if current is not None and current != value:
                overridden.append(f"{key}={current!r}")
            setattr(base, key, value)
        if overridden:
            logger.warning(
                f"TIGER's constrained generate() is pinned to trie-constrained beam search; ignoring "
                f"{', '.join(overridden)} (pass constrained=False for free-form generation)"
            )
        num_return_sequences = pinned.get("num_return_sequences") or base.num_return_sequences or 1
        num_beams = pinned.get("num_beams")
        if num_beams is None:
            num_beams = base.num_beams if base.num_beams is not None and base.num_beams > 1 else None
        if num_beams is None:
            num_beams = self.config.default_num_beams
        if num_beams < num_return_sequences:
            logger.info(f"num_beams={num_beams} raised to num_return_sequences={num_return_sequences}")
            num_beams = num_return_sequences
        base.num_beams = int(num_beams)
        base.num_return_sequences = int(num_return_sequences)
        base.max_new_tokens = self.config.num_levels
        base.max_length = None
        base.early_stopping = True if num_beams > 1 else None
        base.decoder_start_token_id = self.config.decoder_start_token_id
        base.pad_token_id = self.config.pad_token_id
        base.eos_token_id = self.config.eos_token_id
        return base, model_kwargs

    def _constrained_generate(
        self, inputs, generation_config, logits_processor, index, fast_beam_search=False, item_prior=None, **model_kwargs
    ):
        """Runs the pinned, trie-constrained search; returns an output with `sequences` and `sequences_scores`.

        With `fast_beam_search` (and only `input_ids` / `attention_mask` / `encoder_outputs` model kwargs) this is
        `generation_tiger.tiger_beam_search`; otherwise transformers' `generate()` with `logits_processor`.
        """
        input_ids = inputs if inputs is not None else model_kwargs.get("input_ids")
        if fast_beam_search and set(model_kwargs) <= {
            "input_ids",
            "attention_mask",
            "encoder_outputs",
            "use_cache",
        }:
            length_penalty = generation_config.length_penalty
            fast = tiger_beam_search(
                self,
                input_ids,
                model_kwargs.get("attention_mask"),
                index=index,
                num_beams=generation_config.num_beams,
                num_return_sequences=generation_config.num_return_sequences,
                length_penalty=1.0 if length_penalty is None else length_penalty,
                encoder_outputs=model_kwargs.get("encoder_outputs"),
                decoder_start_token_id=generation_config.decoder_start_token_id,
                pad_token_id=generation_config.pad_token_id,
                item_prior=item_prior,
            )
            return GenerateBeamEncoderDecoderOutput(
                sequences=fast.sequences, sequences_scores=fast.sequences_scores
            )
        saved = self.generation_config
        self.generation_config = generation_config  # nothing from the model's own config can leak back in
        try:
            output = super().generate(
                inputs, generation_config=generation_config, logits_processor=logits_processor, **model_kwargs
            )
        finally:
            self.generation_config = saved
        if generation_config.num_beams == 1:  # greedy search reports no sequence scores: use beam scoring
            generated = output.sequences[:, 1:]
            log_probs = torch.stack(
                [torch.log_softmax(step.float(), dim=-1) for step in output.logits], dim=1
            )
            token_log_probs = log_probs.gather(-1, generated[:, : log_probs.shape[1], None]).squeeze(-1)
            length_penalty = (
                1.0 if generation_config.length_penalty is None else generation_config.length_penalty
            )
            output.sequences_scores = token_log_probs.sum(-1) / (generated.shape[1] ** length_penalty)
        return output

    def _mark_padding_rows(self, output, index, generation_config):
        """Turn rows that are not a catalogue item, or repeat an earlier row of the same input, into padding rows."""
        sequences = output.sequences
        num_levels = self.config.num_levels
        rows = generation_config.num_return_sequences
        generated = sequences[:, 1 : 1 + num_levels]
        if generated.shape[1] < num_levels:
            generated = torch.nn.functional.pad(generated, (0, num_levels - generated.shape[1]), value=-1)
        leaf = index.prefix_nodes(generated.to(index.device)).to(sequences.device).view(-1, rows)
        valid = leaf >= 0
        same = (leaf[:, :, None] == leaf[:, None, :]) & valid[:, :, None] & valid[:, None, :]
        earlier = torch.ones(rows, rows, dtype=torch.bool, device=leaf.device).tril(-1)
        keep = valid & ~(same & earlier).any(-1)  # [batch, rows]
        scores = output.sequences_scores.view(-1, rows).masked_fill(~keep, -math.inf)
        sequences = sequences.view(-1, rows, sequences.shape[-1]).masked_fill(
            ~keep[..., None], self.config.pad_token_id
        )
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices  # items first, padding last
        output.sequences = sequences.gather(1, order[..., None].expand_as(sequences)).view(
            -1, sequences.shape[-1]
        )
        output.sequences_scores = scores.gather(1, order).view(-1)
        return output

    # ------------------------------------------------------------------ recommendation

    def check_tokenizer(self, tokenizer: Any) -> None:
        """Raise `ValueError` if `tokenizer` does not match this model.

        Checks the vocabulary layout (size, special ids, levels, codebook sizes, level offsets) and that every
        item of the model's catalogue is known to the tokenizer (equal catalogue fingerprints, or the model's
        catalogue a subset of the tokenizer's, e.g. after in-stock filtering), and that the tokenizer maps the items
        the model was built with to the same semantic IDs (`config.item_mapping_fingerprint`; items added later with
        `tok.add_items` are allowed).
        """
        self._check_layout(tokenizer)
        self._check_item_mapping(tokenizer)
        self._check_catalogue_items(tokenizer)

    def _check_layout(self, tokenizer: Any) -> None:
        """Raise `ValueError` if the tokenizer's vocabulary layout differs from the model's."""
        config = self.config
        expected = {
            "vocab size": (config.vocab_size, len(tokenizer)),
            "pad token id": (config.pad_token_id, tokenizer.pad_token_id),
            "eos token id": (config.eos_token_id, tokenizer.eos_token_id),
            "number of levels": (config.num_levels, tokenizer.num_levels),
            "codebook sizes": (list(config.codebook_sizes), list(tokenizer.codebook_sizes)),
            "level offsets": (list(config.level_offsets), list(tokenizer.level_offsets)),
        }
        for name, (model_value, tokenizer_value) in expected.items():
            if model_value != tokenizer_value:
                raise ValueError(
                    f"tokenizer and model do not match: {name} is {tokenizer_value} in the tokenizer but "
                    f"{model_value} in the model (were they trained together?)"
                )

    def _check_item_mapping(self, tokenizer: Any) -> None:
        """Raise `ValueError` if the tokenizer maps the model's items (item id -> semantic ID) differently."""
        size = int(self.config.item_mapping_size)
        expected = self.config.item_mapping_fingerprint
        if not expected:  # saved before the fingerprint existed
            return
        if tokenizer.catalogue_size < size or tokenizer.item_mapping_fingerprint(size) != expected:
            raise ValueError(
                f"tokenizer and model do not match: the tokenizer maps the model's first {size} items (item id -> "
                "semantic ID) differently from the tokenizer the model was built with (item mapping fingerprints "
                "differ); use the tokenizer saved with the model, or model.set_catalogue(tokenizer) if this "
                "tokenizer is meant to replace it"
            )

    def _check_catalogue_items(self, tokenizer: Any) -> None:
        key = (self.catalogue_fingerprint(), tokenizer.catalogue_fingerprint())
        if key[0] == key[1] or self._tokenizer_checks.get(key):
            return
        decoded = tokenizer.decode_items(self.catalogue.cpu())
        unknown = [row for row, item in enumerate(decoded) if item is None]
        if unknown:
            raise ValueError(
                f"tokenizer and model do not match: {len(unknown)} of the model's {len(decoded)} catalogue items "
                f"(rows {unknown[:10]}) are unknown to the tokenizer (catalogue fingerprints {key[0][:12]} vs "
                f"{key[1][:12]}); use the tokenizer saved with the model, or model.set_catalogue(tokenizer)"
            )
        self._tokenizer_checks[key] = True

    @torch.no_grad()
    def recommend(
        self,
        histories: Sequence[Sequence[Any]],
        tokenizer: Any,
        user_ids: Sequence[Any] | None = None,
        top_k: int = 10,
        num_beams: int | None = None,
        return_scores: bool = False,
        batch_size: int | None = None,
        fast_beam_search: bool = True,
        precision: str = "auto",
        item_prior: TransitionPrior | None = None,
    ):
        """Recommend the next items for each history.

        Args:
            histories (list of lists of item ids): one history per user, oldest item first. Histories longer than
                `config.max_history` are truncated to their most recent `config.max_history` items; an empty
                history or an unknown item id is an error.
            tokenizer ([`SemanticIDTokenizer`]): the tokenizer the model was trained with (checked).
            user_ids (list, *optional*): one user id per history, hashed into the user token.
            top_k (`int`, *optional*, defaults to 10): items per history.
            num_beams (`int`, *optional*): beam width, defaults to `config.default_num_beams`, at least `top_k`.
            return_scores (`bool`, *optional*, defaults to `False`): also return the beam scores.
            batch_size (`int`, *optional*): histories per `generate()` call; defaults to 64 on CPU (smaller
                per-step tensors: measured 1.3x faster than 256 on a 2-core CPU) and 256 on accelerators.
            fast_beam_search (`bool`, *optional*, defaults to `True`): see [`~TigerForConditionalGeneration.generate`];
                `False` uses transformers' beam search with the trie processor (same results, slower).
            precision (`str`, *optional*, defaults to `"auto"`): `"auto"` and `"fp32"` decode an fp32 model in fp32,
                on every CPU; `"bf16"` autocasts to bf16 (on Beauty with native AVX512-BF16: 1.38x faster, but only
                44.6% of the users got fp32's exact top-10, see `inference_autocast_dtype`). The softmax and the beam
                scores stay float32.
            item_prior ([`~generation_tiger.TransitionPrior`], *optional*): a count prior fused into the ranking
                (see [`~TigerForConditionalGeneration.generate`]); built over this tokenizer's catalogue.

        Returns:
            `list[list]` of item ids, best first (fewer than `top_k` when the catalogue has fewer items), or a tuple
            `(items, scores)` with matching `list[list[float]]` scores when `return_scores=True`.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if batch_size is None:
            batch_size = 64 if self.device.type == "cpu" else 256
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(histories, (str, bytes)) or not isinstance(histories, Sequence):
            raise TypeError("histories must be a list of histories (lists of item ids)")
        if user_ids is not None and len(user_ids) != len(histories):
            raise ValueError(f"{len(histories)} histories but {len(user_ids)} user ids")
        for position, history in enumerate(histories):
            if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
                raise TypeError(
                    f"history {position} is {type(history).__name__}, not a list of item ids; wrap a single "
                    "history in a list: recommend([history], ...)"
                )
            if len(history) == 0:
                raise ValueError(f"history {position} is empty: at least one item is needed")
        if not self._has_catalogue():
            # a freshly initialised model (`TigerForConditionalGeneration(TigerConfig.from_tokenizer(tok))`) has no
            # catalogue yet: take the tokenizer's, after the layout and item-mapping checks
            self._check_layout(tokenizer)
            self._check_item_mapping(tokenizer)
            logger.info("the model had no catalogue: using the tokenizer's %d items", tokenizer.catalogue_size)
            self.set_catalogue(tokenizer)
        self.check_tokenizer(tokenizer)
        num_beams = max(num_beams or self.config.default_num_beams, top_k)
        limit = self.config.max_history
        autocast_dtype = inference_autocast_dtype(self.device, self.dtype, precision)

        was_training = self.training
        self.eval()
        items: list[list[Any]] = [[] for _ in histories]
        scores: list[list[float]] = [[] for _ in histories]
        # Batches of similar history lengths carry little padding; results go back to the input order.
        order = sorted(range(len(histories)), key=lambda index: min(len(histories[index]), limit))
        try:
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                chunk = [list(histories[index])[-limit:] for index in rows]
                users = None if user_ids is None else [user_ids[index] for index in rows]
                batch = tokenizer.batch_encode_histories(chunk, user_ids=users, return_tensors="pt")
                with torch.autocast(self.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    output = self.generate(
                        input_ids=batch["input_ids"].to(self.device),
                        attention_mask=batch["attention_mask"].to(self.device),
                        num_beams=num_beams,
                        num_return_sequences=top_k,
                        return_dict_in_generate=True,
                        fast_beam_search=fast_beam_search,
                        item_prior=item_prior,
                    )
                decoded = tokenizer.decode_items(output.sequences.cpu())
                row_scores = output.sequences_scores.float().cpu().tolist()
                for row, index in enumerate(rows):
                    pairs = [
                        (decoded[row * top_k + j], row_scores[row * top_k + j])
                        for j in range(top_k)
                        if decoded[row * top_k + j] is not None
                    ]
                    items[index] = [item for item, _ in pairs]
                    scores[index] = [score for _, score in pairs]
        finally:
            self.train(was_training)
        return (items, scores) if return_scores else items

    # ------------------------------------------------------------------ saving

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`; with remote code registered, `auto_map` also covers `AutoModel` and
        `AutoTokenizer` (the tokenizer file is copied next to the model files)."""
        if self._auto_class is not None:
            target = f"{self.__class__.__module__.split('.')[-1]}.{self.__class__.__name__}"
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            for auto_class in ("AutoModel", "AutoModelForSeq2SeqLM"):
                auto_map.setdefault(auto_class, target)
            auto_map.setdefault("AutoTokenizer", ["tokenization_tiger.SemanticIDTokenizer", None])
            self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)


__all__ = ["TigerForConditionalGeneration"]
