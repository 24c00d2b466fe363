"""Trie-constrained decoding for TIGER: a vectorised catalogue index, a logits processor and a fast beam search.

Everything here works on whole tensors: building the index is a few sorts over the ``[N, L]`` catalogue, and
each decoding step is a handful of gathers, ``searchsorted`` calls and scatters, with no Python loop over beams,
items or batch rows (the only loops run over the L <= 5 levels and the decoder layers). CPU and CUDA alike.

This file ships as Hub remote code next to ``modeling_tiger.py``: it imports only torch, transformers and the
standard library.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers.generation.logits_process import LogitsProcessor
from transformers.utils import ModelOutput, logging

logger = logging.get_logger(__name__)

_PRECISIONS = {"auto": "auto", "fp32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16"}


def cpu_bf16_support(cpuinfo: str = "/proc/cpuinfo") -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively (AMX-BF16 or AVX512-BF16), read from the flags of ``/proc/cpuinfo``.

    Without those instructions PyTorch emulates bf16 matmuls and they run slower than fp32 (measured on a 2-core
    AVX-512 Xeon without them: 57 against 148 GFLOP/s), so bf16 only pays where this returns ``True``.

    The environment variable ``HF_TIGER_CPU_BF16`` overrides the detection: ``0`` never uses bf16 automatically
    (reproducible fp32 on every machine, as the test suite does), ``1`` treats the CPU as native.

    Args:
        cpuinfo (`str`, *optional*, defaults to ``"/proc/cpuinfo"``): the file listing the CPU flags.

    Returns:
        `tuple[bool, str]`: the answer and the reason, e.g. ``(True, "amx_bf16, avx512_bf16")`` or
        ``(False, "no AMX / AVX512-BF16 (bf16 is emulated)")``.
    """
    override = os.environ.get("HF_TIGER_CPU_BF16", "").strip().lower()
    if override in ("0", "false", "no", "1", "true", "yes"):
        native = override in ("1", "true", "yes")
        return native, f"HF_TIGER_CPU_BF16={override} ({'bf16' if native else 'fp32'} set by the environment)"
    try:
        with open(cpuinfo, encoding="utf-8") as lines:
            flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    except OSError:
        return False, f"CPU flags unknown (no {cpuinfo}): bf16 is not assumed"
    native = [flag for flag in ("amx_bf16", "avx512_bf16") if flag in flags]
    return (True, ", ".join(native)) if native else (False, "no AMX / AVX512-BF16 (bf16 is emulated)")


def inference_autocast_dtype(device: torch.device, weight_dtype: torch.dtype, precision: str = "auto"):
    """The autocast dtype of a decode, or ``None`` to run in the weights' own dtype.

    bf16 decoding is opt-in, also on CPUs with native bf16: on Beauty (22,363 test users, 20 beams, a 2-core AMD
    EPYC with AVX512-BF16) it was 1.38x faster than fp32, but bf16 rounding reordered near-tied items, so only
    44.6% of the users got fp32's exact top-10 list and 83.3% the same ten items (README, "bf16 where the CPU has
    it"). ``"auto"`` therefore keeps fp32 weights in fp32 for exact, reproducible lists.

    Args:
        device (`torch.device`): where the model runs.
        weight_dtype (`torch.dtype`): the dtype of the model's weights.
        precision (`str`, *optional*, defaults to ``"auto"``): ``"auto"`` and ``"fp32"`` decode fp32 weights in
            fp32 (weights already in a low precision run as they are); ``"bf16"`` autocasts to bf16 (the speed for
            exactness trade above; emulated and slower on CPUs without AMX / AVX512-BF16). Beam scores and the
            softmax stay float32 either way.
    """
    mode = _PRECISIONS.get(str(precision).lower())
    if mode is None:
        raise ValueError(f"precision must be one of {sorted(set(_PRECISIONS))}, got {precision!r}")
    if mode != "bf16" or weight_dtype != torch.float32:
        return None
    if device.type == "cpu":
        native, reason = cpu_bf16_support()
        if not native:
            logger.info_once(f"decoding in bf16 as asked, though this CPU has {reason}: slower than fp32")
    return torch.bfloat16


# Dense per-level child tables are used while they stay this small (entries); deeper levels use CSR.
_MAX_DENSE_TABLE_ENTRIES = 1 << 24


class CatalogueIndex:
    r"""
    Static-shape trie of a catalogue's semantic-ID token sequences.

    A *node at depth t* is a distinct prefix of t tokens that starts at least one catalogue row; nodes of one depth
    are numbered in the lexicographic order of their prefixes (the root is node 0 of depth 0). Level t's tokens
    lie in a contiguous id range ``[level_low[t], level_low[t] + level_width[t])`` (one range per level, as in the
    SemanticIDTokenizer's vocabulary), so a child of a depth-t node is addressed by its *relative* token
    ``token - level_low[t]``.

    Two representations of the parent -> child relation, both built once:

    - **dense** for the first ``num_dense_levels`` levels: ``dense_child[t]`` is a ``[n_t, level_width[t]]`` table
      of child node ids (-1 = no such child), so the mask of allowed level-t tokens is one row gather;
    - **CSR / sorted keys** for deeper levels: the children of all depth-t nodes, sorted by the packed key
      ``parent * level_width[t] + relative_token``. ``row_ptr[t]`` (``[n_t + 1]``) gives each node's children range,
      turned into a mask by one scatter; the child reached by a token is found by ``searchsorted`` on the keys.

    Args:
        catalogue_token_ids (`torch.LongTensor` of shape `(num_items, num_levels)`):
            Token ids of every catalogue item's semantic ID (row i = item i), e.g. ``tok.catalogue_token_ids()``.
        vocab_size (`int`):
            Size of the model's vocabulary; every token id must be smaller.
        eos_token_id (`int`, *optional*, defaults to 1):
            Token allowed (alone) once a full semantic ID has been generated. ``None`` allows ``pad_token_id``.
        pad_token_id (`int`, *optional*, defaults to 0):
            Padding token, also allowed after the end-of-sequence token (see
            [`~CatalogueIndex.allowed_tokens_mask`]).
        num_dense_levels (`int`, *optional*, defaults to 2):
            How many leading levels use a dense child table (when it has at most 2**24 entries).

    Example:

    ```python
    >>> import torch
    >>> from hf_tiger.models.tiger.generation_tiger import CatalogueIndex
    >>> catalogue = torch.tensor([[5, 9, 12], [5, 10, 12], [6, 9, 12]])
    >>> index = CatalogueIndex(catalogue, vocab_size=16)
    >>> index.allowed_tokens_mask(torch.tensor([[5]])).nonzero()[:, 1].tolist()
    [9, 10]

    ```
    """

    def __init__(
        self,
        catalogue_token_ids: torch.Tensor,
        vocab_size: int,
        eos_token_id: int | None = 1,
        pad_token_id: int | None = 0,
        num_dense_levels: int = 2,
    ):
        catalogue = torch.as_tensor(catalogue_token_ids).detach().to("cpu", torch.long)
        if catalogue.dim() != 2 or catalogue.shape[0] == 0 or catalogue.shape[1] == 0:
            raise ValueError(
                f"catalogue_token_ids must be a non-empty [num_items, num_levels] tensor, got shape "
                f"{tuple(catalogue.shape)}"
            )
        if int(catalogue.min()) < 0 or int(catalogue.max()) >= vocab_size:
            raise ValueError(
                f"catalogue_token_ids must lie in [0, vocab_size={vocab_size}), got values in "
                f"[{int(catalogue.min())}, {int(catalogue.max())}]"
            )
        if num_dense_levels < 0:
            raise ValueError(f"num_dense_levels must be >= 0, got {num_dense_levels}")
        self.vocab_size = int(vocab_size)
        self.eos_token_id = None if eos_token_id is None else int(eos_token_id)
        self.pad_token_id = None if pad_token_id is None else int(pad_token_id)
        self.num_items, self.num_levels = catalogue.shape
        self.level_low = [int(v) for v in catalogue.min(dim=0).values]
        self.level_width = [int(v) for v in (catalogue.max(dim=0).values + 1 - catalogue.min(dim=0).values)]
        relative = catalogue - torch.tensor(self.level_low)

        self.num_nodes = [1]  # depth 0: the root
        self.child_keys: list[torch.Tensor] = []  # [n_{t+1}] sorted packed keys parent * W_t + relative token
        self.child_token: list[torch.Tensor] = []  # [n_{t+1}] relative token of each depth-(t+1) node
        self.row_ptr: list[torch.Tensor] = []  # [n_t + 1] children range of each depth-t node
        self.max_children: list[int] = []
        self.dense_child: list[torch.Tensor | None] = []  # [n_t, W_t] child node id or -1
        self.row_nodes: list[torch.Tensor] = []  # [N] depth-(t+1) node of each catalogue row
        self.row_relative = relative  # [N, L] relative token of each catalogue row at each level
        node_of_row = torch.zeros(self.num_items, dtype=torch.long)
        for t in range(self.num_levels):
            width = self.level_width[t]
            keys = node_of_row * width + relative[:, t]
            unique_keys, node_of_row = torch.unique(keys, sorted=True, return_inverse=True)
            parents = unique_keys // width
            row_ptr = torch.searchsorted(unique_keys, torch.arange(self.num_nodes[t] + 1) * width)
            self.child_keys.append(unique_keys)
            self.child_token.append(unique_keys % width)
            self.row_ptr.append(row_ptr)
            self.max_children.append(int((row_ptr[1:] - row_ptr[:-1]).max()))
            if t < num_dense_levels and self.num_nodes[t] * width <= _MAX_DENSE_TABLE_ENTRIES:
                table = torch.full((self.num_nodes[t], width), -1, dtype=torch.long)
                table[parents, unique_keys % width] = torch.arange(len(unique_keys))
                self.dense_child.append(table)
            else:
                self.dense_child.append(None)
            self.num_nodes.append(len(unique_keys))
            self.row_nodes.append(node_of_row)
        # leaf (depth-L node) -> first catalogue row holding that semantic ID
        leaf_to_row = torch.full((self.num_nodes[-1],), self.num_items, dtype=torch.long)
        leaf_to_row.scatter_reduce_(0, node_of_row, torch.arange(self.num_items), reduce="amin")
        self.leaf_to_row = leaf_to_row
        if self.num_nodes[-1] < self.num_items:
            logger.warning(
                f"The catalogue holds {self.num_items - self.num_nodes[-1]} duplicate semantic IDs; decoding "
                "returns each semantic ID once, mapped to its first catalogue row."
            )
        self.device = torch.device("cpu")

    # ----------------------------------------------------------------------------------------------------------
    def to(self, device: torch.device | str) -> CatalogueIndex:
        """Returns a copy of the index whose tensors live on `device` (self if already there)."""
        device = torch.device(device)
        if device == self.device:
            return self
        new = object.__new__(CatalogueIndex)
        new.__dict__.update(self.__dict__)
        for name in ("child_keys", "child_token", "row_ptr", "dense_child", "row_nodes"):
            setattr(new, name, [None if x is None else x.to(device) for x in getattr(self, name)])
        new.leaf_to_row = self.leaf_to_row.to(device)
        new.row_relative = self.row_relative.to(device)
        new.device = device
        return new

    def child(self, depth: int, node: torch.Tensor, relative_token: torch.Tensor) -> torch.Tensor:
        """
        Node reached from depth-`depth` nodes by one level-`depth` token.

        Args:
            depth (`int`): depth of `node`, in ``[0, num_levels)``.
            node (`torch.LongTensor` of any shape): node ids at that depth (-1 = invalid prefix).
            relative_token (`torch.LongTensor`, same shape): ``token - level_low[depth]`` (any value; out of range
                means "not a child").

        Returns:
            `torch.LongTensor` of the same shape: depth-(depth+1) node ids, -1 where there is no such child.
        """
        width = self.level_width[depth]
        valid = (node >= 0) & (relative_token >= 0) & (relative_token < width)
        node_c = node.clamp(min=0)
        token_c = relative_token.clamp(0, width - 1)
        table = self.dense_child[depth]
        if table is not None:
            child = table[node_c, token_c]
        else:
            keys = self.child_keys[depth]
            packed = node_c * width + token_c
            pos = torch.searchsorted(keys, packed.reshape(-1)).reshape(packed.shape).clamp(max=len(keys) - 1)
            child = torch.where(keys[pos] == packed, pos, -1)
        return torch.where(valid, child, -1)

    def children_mask(self, depth: int, node: torch.Tensor) -> torch.Tensor:
        """
        Which level-`depth` tokens extend each depth-`depth` node to a catalogue prefix.

        Args:
            depth (`int`): depth of `node`, in ``[0, num_levels)``.
            node (`torch.LongTensor` of shape `(*)`): node ids (-1 = invalid prefix -> all False).

        Returns:
            `torch.BoolTensor` of shape `(*, level_width[depth])`, indexed by relative token.
        """
        width = self.level_width[depth]
        valid = node >= 0
        node_c = node.clamp(min=0)
        table = self.dense_child[depth]
        if table is not None:
            return (table[node_c] >= 0) & valid[..., None]
        start = self.row_ptr[depth][node_c]
        end = self.row_ptr[depth][node_c + 1]
        slots = start[..., None] + torch.arange(self.max_children[depth], device=node.device)
        in_range = (slots < end[..., None]) & valid[..., None]
        tokens = self.child_token[depth][slots.clamp(max=len(self.child_token[depth]) - 1)]
        tokens = torch.where(in_range, tokens, width)  # spill column, dropped below
        mask = torch.zeros((*node.shape, width + 1), dtype=torch.bool, device=node.device)
        mask.scatter_(-1, tokens, True)
        return mask[..., :width]

    def prefix_nodes(self, prefix: torch.Tensor) -> torch.Tensor:
        """
        Walks the trie along token prefixes.

        Args:
            prefix (`torch.LongTensor` of shape `(R, t)`): generated tokens (no decoder start token), t <= num_levels.

        Returns:
            `torch.LongTensor` of shape `(R,)`: the depth-t node of each prefix, -1 if it starts no catalogue item.
        """
        node = torch.zeros(prefix.shape[0], dtype=torch.long, device=prefix.device)
        for depth in range(min(prefix.shape[1], self.num_levels)):
            node = self.child(depth, node, prefix[:, depth] - self.level_low[depth])
        return node

    def allowed_tokens_mask(self, prefix: torch.Tensor, vocab_size: int | None = None) -> torch.Tensor:
        """
        Tokens that may follow each generated prefix.

        - ``t < num_levels`` tokens generated: the level-t tokens that extend the prefix to a catalogue prefix;
        - exactly ``num_levels``: only ``eos_token_id`` (``pad_token_id`` if it is None), the item is complete;
        - more than ``num_levels`` (after EOS, e.g. padding of finished rows): ``eos_token_id`` and ``pad_token_id``;
        - a prefix that does not start any catalogue item: nothing (an all-False row). Beam search never selects
          such rows (their scores become -inf); they only appear as filler when fewer valid continuations exist
          than the search keeps.

        Args:
            prefix (`torch.LongTensor` of shape `(R, t)`): generated tokens, without the decoder start token.
            vocab_size (`int`, *optional*): width of the returned mask (defaults to the index's vocabulary size;
                may be larger, e.g. for a padded embedding matrix).

        Returns:
            `torch.BoolTensor` of shape `(R, vocab_size)`.
        """
        vocab_size = self.vocab_size if vocab_size is None else int(vocab_size)
        num_rows, t = prefix.shape
        prefix = prefix.to(self.device)
        node = self.prefix_nodes(prefix)
        mask = torch.zeros((num_rows, vocab_size), dtype=torch.bool, device=prefix.device)
        if t < self.num_levels:
            low, width = self.level_low[t], self.level_width[t]
            mask[:, low : low + width] = self.children_mask(t, node)
        else:
            end_tokens = [self.eos_token_id if self.eos_token_id is not None else self.pad_token_id]
            if t > self.num_levels and self.pad_token_id is not None:
                end_tokens.append(self.pad_token_id)
            for token in end_tokens:
                if token is not None:
                    mask[:, token] = node >= 0
        return mask


class TrieConstrainedLogitsProcessor(LogitsProcessor):
    r"""
    [`LogitsProcessor`] that restricts generation to the semantic IDs of a catalogue.

    At each step it sets to ``-inf`` the score of every token that would make the generated prefix leave the
    catalogue's trie: at level t only the level-t codes that some item with the same first t codes has survive.
    Once a full semantic ID is generated only the end-of-sequence token survives (see
    [`CatalogueIndex.allowed_tokens_mask`] for the exact rule, including invalid prefixes). This is what makes
    every sequence beam search returns a real item, and -- because beams hold distinct prefixes -- the
    `num_return_sequences` results of one input distinct items.

    The mask comes from a [`CatalogueIndex`]: a few vectorised gathers per step, no Python loop over beams.
    Scores are only masked, never renormalised, exactly like transformers' `PrefixConstrainedLogitsProcessor`.

    Args:
        catalogue (`CatalogueIndex` or `torch.LongTensor` of shape `(num_items, num_levels)`):
            The index, or the catalogue's token ids to build it from.
        vocab_size (`int`, *optional*):
            Needed when `catalogue` is a tensor.
        prompt_length (`int`, *optional*, defaults to 1):
            Number of leading tokens of `input_ids` that are not generated semantic-ID tokens (the decoder start
            token of an encoder-decoder model).
        eos_token_id (`int`, *optional*, defaults to 1), pad_token_id (`int`, *optional*, defaults to 0):
            Passed to [`CatalogueIndex`] when `catalogue` is a tensor.

    Example:

    ```python
    >>> import torch
    >>> from hf_tiger.models.tiger.generation_tiger import TrieConstrainedLogitsProcessor
    >>> processor = TrieConstrainedLogitsProcessor(torch.tensor([[5, 9], [6, 8]]), vocab_size=12)
    >>> scores = processor(torch.tensor([[0, 6]]), torch.zeros(1, 12))
    >>> torch.isfinite(scores).nonzero()[:, 1].tolist()
    [8]

    ```
    """

    def __init__(
        self,
        catalogue: CatalogueIndex | torch.Tensor,
        vocab_size: int | None = None,
        prompt_length: int = 1,
        eos_token_id: int | None = 1,
        pad_token_id: int | None = 0,
    ):
        if isinstance(catalogue, CatalogueIndex):
            self.index = catalogue
        else:
            if vocab_size is None:
                raise ValueError("vocab_size is required when building the processor from a catalogue tensor")
            self.index = CatalogueIndex(
                catalogue, vocab_size, eos_token_id=eos_token_id, pad_token_id=pad_token_id
            )
        if prompt_length < 0:
            raise ValueError(f"prompt_length must be >= 0, got {prompt_length}")
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size * num_beams, sequence_length)`): tokens so far.
            scores (`torch.FloatTensor` of shape `(batch_size * num_beams, vocab_size)`): next-token scores.

        Returns:
            `torch.FloatTensor` of the same shape: `scores` with disallowed tokens set to ``-inf``.
        """
        if self.index.device != scores.device:
            self.index = self.index.to(scores.device)
        mask = self.index.allowed_tokens_mask(input_ids[:, self.prompt_length :], vocab_size=scores.shape[-1])
        return scores.masked_fill(~mask, -math.inf)


def catalogue_index_for(
    catalogue_token_ids: torch.Tensor,
    vocab_size: int,
    eos_token_id: int | None = 1,
    pad_token_id: int | None = 0,
    cache_owner: object | None = None,
) -> CatalogueIndex:
    """
    Builds a [`CatalogueIndex`] on the catalogue's device, reusing the one cached on `cache_owner` (e.g. the model)
    as long as the catalogue tensor is the same object, unmodified, on the same device.

    Args:
        catalogue_token_ids (`torch.LongTensor` of shape `(num_items, num_levels)`): the catalogue.
        vocab_size (`int`): the model's vocabulary size.
        eos_token_id (`int`, *optional*, defaults to 1), pad_token_id (`int`, *optional*, defaults to 0): special ids.
        cache_owner (`object`, *optional*): object holding the cache in its ``_tiger_catalogue_index`` attribute.
    """
    key = (
        id(catalogue_token_ids),
        catalogue_token_ids.data_ptr(),
        getattr(catalogue_token_ids, "_version", 0),
        tuple(catalogue_token_ids.shape),
        str(catalogue_token_ids.device),
        vocab_size,
        eos_token_id,
        pad_token_id,
    )
    cached = getattr(cache_owner, "_tiger_catalogue_index", None) if cache_owner is not None else None
    if cached is not None and cached[0] == key:
        return cached[1]
    index = CatalogueIndex(
        catalogue_token_ids, vocab_size, eos_token_id=eos_token_id, pad_token_id=pad_token_id
    )
    index = index.to(catalogue_token_ids.device)
    if cache_owner is not None:
        object.__setattr__(cache_owner, "_tiger_catalogue_index", (key, index))
    return index


# ======================================================================================================================
# A count prior fused into the search
# ======================================================================================================================


TRANSITION_PRIOR_FILE = "transition_prior.safetensors"


class TransitionPrior:
    r"""
    A first-order count prior over the catalogue, fused into the constrained beam search ("shallow fusion").

    TIGER generalises across items but recovers only part of the item-to-item transitions its training rows
    contain, which simple counts memorise exactly. With a prior the fast beam search ranks items by

    ``log p_TIGER(item | history) + weight * log P(item | last item of the history)``,

    with the count model smoothed towards popularity:
    ``P(b | a) = (c(a, b) + backoff * pi(b)) / (c(a) + backoff)``, where ``c(a, b)`` counts how often ``b`` followed
    ``a`` in the training rows, ``c(a) = sum_b c(a, b)`` and ``pi`` is the add-one smoothed training popularity
    over the catalogue rows (so every item keeps a non-zero prior). The prior of an item factorises over its
    semantic-ID prefixes (the mass under each trie node), so each step adds ``weight * log(mass(child) /
    mass(parent))`` to the tokens it ranks, and a complete item carries exactly ``weight * log P(item | a)``.
    ``weight=0`` is the plain search. `weight` and `backoff` are chosen on validation.

    Args:
        successor_ptr (`torch.LongTensor` of shape `(num_items + 1,)`):
            CSR row pointer: the successors of catalogue row ``a`` are ``successor_rows[ptr[a]:ptr[a + 1]]``.
        successor_rows (`torch.LongTensor` of shape `(nnz,)`): catalogue rows of the successors.
        successor_counts (`torch.FloatTensor` of shape `(nnz,)`): their transition counts (positive).
        popularity (`torch.FloatTensor` of shape `(num_items,)`): training popularity counts per catalogue row
            (add-one smoothed and normalised here).
        weight (`float`, *optional*, defaults to 0.5): fusion weight of the log prior.
        backoff (`float`, *optional*, defaults to 1.0): pseudo-count of the popularity distribution in ``P(b | a)``.

    Example:

    ```python
    >>> from hf_tiger.baselines import LastItemTransitionRecommender
    >>> counts = LastItemTransitionRecommender().fit(splits["train"])
    >>> prior = TransitionPrior.from_recommender(counts, tokenizer, weight=0.5)
    >>> model.recommend(histories, tokenizer, item_prior=prior)
    ```
    """

    def __init__(
        self,
        successor_ptr: torch.Tensor,
        successor_rows: torch.Tensor,
        successor_counts: torch.Tensor,
        popularity: torch.Tensor,
        weight: float = 0.5,
        backoff: float = 1.0,
    ):
        ptr = torch.as_tensor(successor_ptr, dtype=torch.long).cpu()
        rows = torch.as_tensor(successor_rows, dtype=torch.long).cpu()
        counts = torch.as_tensor(successor_counts, dtype=torch.float32).cpu()
        popularity = torch.as_tensor(popularity, dtype=torch.float32).cpu()
        num_items = popularity.numel()
        if popularity.dim() != 1 or num_items == 0 or bool((popularity < 0).any()):
            raise ValueError("popularity must be a non-empty 1-D tensor of non-negative counts per catalogue row")
        if ptr.shape != (num_items + 1,) or int(ptr[0]) != 0 or bool((ptr[1:] < ptr[:-1]).any()):
            raise ValueError(
                f"successor_ptr must be a non-decreasing CSR pointer of {num_items + 1} entries starting at 0"
            )
        if rows.shape != counts.shape or rows.dim() != 1 or int(ptr[-1]) != rows.numel():
            raise ValueError(
                f"successor_rows {tuple(rows.shape)} and successor_counts {tuple(counts.shape)} must be 1-D with "
                f"successor_ptr[-1] = {int(ptr[-1])} entries"
            )
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= num_items):
            raise ValueError(f"successor_rows must be catalogue rows in [0, {num_items})")
        if bool((counts <= 0).any()):
            raise ValueError("successor_counts must be positive")
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight must be a finite number >= 0, got {weight}")
        if not math.isfinite(backoff) or backoff <= 0:
            raise ValueError(f"backoff must be a finite number > 0 (every item needs a non-zero prior), got {backoff}")
        self.successor_ptr, self.successor_rows, self.successor_counts = ptr, rows, counts
        self.popularity_counts = popularity
        self.popularity = (popularity + 1.0) / (popularity.sum() + num_items)
        self.num_items = num_items
        self.weight = float(weight)
        self.backoff = float(backoff)
        self.catalogue_fingerprint: str | None = None

    @classmethod
    def from_counts(cls, transitions, popularity, item_ids, weight: float = 0.5, backoff: float = 1.0):
        """
        Builds the prior from count tables keyed by item id.

        Args:
            transitions (`Mapping[item, Mapping[item, int]]`): how often each item followed each item.
            popularity (`Mapping[item, int]` or `None`): training popularity of each item; `None` backs off to the
                uniform distribution (the prior then only lifts the last item's successors and leaves the ranking of
                every other item to TIGER).
            item_ids (`Sequence`): the catalogue's item ids, row order (`tokenizer.item_ids`). Items outside the
                catalogue are ignored.
            weight (`float`), backoff (`float`): see the class.
        """
        row_of = {item: row for row, item in enumerate(item_ids)}
        pop = torch.zeros(len(item_ids))
        for item, count in (popularity or {}).items():
            row = row_of.get(item)
            if row is not None:
                pop[row] = float(count)
        per_row: list[list[tuple[int, float]]] = [[] for _ in item_ids]
        for source, successors in transitions.items():
            source_row = row_of.get(source)
            if source_row is None:
                continue
            per_row[source_row] = [
                (row_of[item], float(count)) for item, count in successors.items() if item in row_of and count > 0
            ]
        lengths = torch.tensor([len(entries) for entries in per_row], dtype=torch.long)
        ptr = torch.zeros(len(item_ids) + 1, dtype=torch.long)
        ptr[1:] = lengths.cumsum(0)
        flat = [entry for entries in per_row for entry in entries]
        rows = torch.tensor([row for row, _ in flat], dtype=torch.long)
        counts = torch.tensor([count for _, count in flat], dtype=torch.float32)
        return cls(ptr, rows, counts, pop, weight=weight, backoff=backoff)

    @classmethod
    def from_recommender(
        cls, recommender, tokenizer, weight: float = 0.5, backoff: float = 1.0, background: str = "popularity"
    ):
        """
        The prior of a fitted `hf_tiger.baselines.LastItemTransitionRecommender`, over `tokenizer`'s catalogue.

        `background` is what the counts back off to: `"popularity"` (its training popularity) or `"uniform"`.
        """
        if not getattr(recommender, "is_fitted", False):
            raise RuntimeError("the transition recommender is not fitted: call fit(train_split) first")
        if background not in ("popularity", "uniform"):
            raise ValueError(f"background must be 'popularity' or 'uniform', got {background!r}")
        popularity = recommender.popularity if background == "popularity" else None
        return cls.from_counts(recommender.transitions, popularity, tokenizer.item_ids, weight=weight, backoff=backoff)

    def with_settings(self, weight: float | None = None, backoff: float | None = None) -> TransitionPrior:
        """The same counts with another `weight` and/or `backoff` (the tables are shared, not rebuilt)."""
        prior = TransitionPrior(
            self.successor_ptr,
            self.successor_rows,
            self.successor_counts,
            self.popularity_counts,
            weight=self.weight if weight is None else weight,
            backoff=self.backoff if backoff is None else backoff,
        )
        prior.catalogue_fingerprint = self.catalogue_fingerprint
        return prior

    def with_catalogue_size(self, num_items: int) -> TransitionPrior:
        """The same prior over a catalogue grown to `num_items` rows (cold-start items: no counts, popularity 0)."""
        if num_items < self.num_items:
            raise ValueError(f"a catalogue of {self.num_items} rows cannot shrink to {num_items}")
        extra = num_items - self.num_items
        ptr = torch.cat((self.successor_ptr, self.successor_ptr[-1:].expand(extra)))
        popularity = torch.cat((self.popularity_counts, torch.zeros(extra)))
        return TransitionPrior(
            ptr, self.successor_rows, self.successor_counts, popularity, weight=self.weight, backoff=self.backoff
        )

    def save_pretrained(self, save_directory: str | os.PathLike, catalogue_fingerprint: str | None = None) -> str:
        """
        Writes ``transition_prior.safetensors`` (the count tables; weight, backoff and the catalogue's fingerprint as
        metadata) into `save_directory`, atomically. Returns the file's path.
        """
        from safetensors.torch import save_file

        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, TRANSITION_PRIOR_FILE)
        metadata = {
            "format": "hf_tiger.transition_prior",
            "version": "1",
            "weight": repr(self.weight),
            "backoff": repr(self.backoff),
            "catalogue_fingerprint": catalogue_fingerprint or "",
        }
        tensors = {
            "successor_ptr": self.successor_ptr,
            "successor_rows": self.successor_rows,
            "successor_counts": self.successor_counts,
            "popularity_counts": self.popularity_counts,
        }
        temporary = f"{path}.{os.getpid()}.tmp"
        try:
            save_file({k: v.contiguous() for k, v in tensors.items()}, temporary, metadata=metadata)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        return path

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides) -> TransitionPrior:
        """
        Loads a prior written by [`~TransitionPrior.save_pretrained`] (a folder or the file itself); `weight=` /
        `backoff=` override the saved ones. The catalogue fingerprint it was saved with is `catalogue_fingerprint`.
        """
        from safetensors import SafetensorError, safe_open

        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, TRANSITION_PRIOR_FILE)
        try:
            with safe_open(path, framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError) as error:
            raise ValueError(f"cannot read the transition prior {path}: {error}") from error
        needed = {"successor_ptr", "successor_rows", "successor_counts", "popularity_counts"}
        if metadata.get("format") != "hf_tiger.transition_prior" or not needed <= set(tensors):
            raise ValueError(
                f"{path} is not a transition prior written by TransitionPrior.save_pretrained (format "
                f"{metadata.get('format')!r}, tensors {sorted(tensors)})"
            )
        settings = {"weight": float(metadata["weight"]), "backoff": float(metadata["backoff"]), **overrides}
        prior = cls(
            tensors["successor_ptr"],
            tensors["successor_rows"],
            tensors["successor_counts"],
            tensors["popularity_counts"],
            **settings,
        )
        prior.catalogue_fingerprint = metadata.get("catalogue_fingerprint") or None
        return prior

    def check_catalogue(self, index: CatalogueIndex) -> None:
        if index.num_items != self.num_items:
            raise ValueError(
                f"the prior covers {self.num_items} catalogue rows but the model's catalogue has {index.num_items}: "
                "build it with the tokenizer of this model"
            )

    def successors(self, last_rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Successor rows and counts of each input's last item, padded.

        Args:
            last_rows (`torch.LongTensor` of shape `(B,)`): catalogue row of each history's last item (-1: unknown,
                popularity only).

        Returns:
            `(rows, counts)`, both of shape `(B, S)`: rows -1 and counts 0 where padded.
        """
        last = last_rows.detach().cpu().long()
        known = last >= 0
        start = torch.where(known, self.successor_ptr[last.clamp(min=0)], 0)
        length = torch.where(known, self.successor_ptr[last.clamp(min=0) + 1] - start, 0)
        width = max(int(length.max()) if last.numel() else 0, 1)
        slots = start[:, None] + torch.arange(width)
        valid = torch.arange(width) < length[:, None]
        if self.successor_rows.numel() == 0:
            return torch.full(slots.shape, -1, dtype=torch.long), torch.zeros(slots.shape)
        flat = slots.clamp(max=self.successor_rows.numel() - 1)
        rows = torch.where(valid, self.successor_rows[flat], -1)
        counts = torch.where(valid, self.successor_counts[flat], 0.0)
        return rows, counts


def last_item_rows(input_ids: torch.Tensor, index: CatalogueIndex, eos_token_id: int) -> torch.Tensor:
    """
    Catalogue row of the last history item of each encoder input (``[user token] + item tokens + [eos]``, padded on
    either side): the `num_levels` tokens before the last `eos_token_id`; -1 where they are no catalogue item.
    """
    batch, length = input_ids.shape
    levels = index.num_levels
    positions = torch.arange(length, device=input_ids.device)
    is_eos = input_ids == eos_token_id
    eos_at = torch.where(is_eos, positions, -1).max(dim=1).values  # [B]
    gather = (eos_at[:, None] - levels + torch.arange(levels, device=input_ids.device)).clamp(min=0)
    tokens = input_ids.gather(1, gather)
    node = index.prefix_nodes(tokens.to(index.device))
    rows = torch.where(node >= 0, index.leaf_to_row[node.clamp(min=0)], -1)
    return torch.where(eos_at.to(rows.device) >= levels, rows, -1)


class _PriorScorer:
    """Per-step log-ratios of a [`TransitionPrior`]'s mass under trie nodes, for one batch of inputs."""

    def __init__(self, prior: TransitionPrior, index: CatalogueIndex, last_rows: torch.Tensor):
        prior.check_catalogue(index)
        device = index.device
        self.index = index
        self.weight = prior.weight
        rows, counts = prior.successors(last_rows)
        self.rows, self.counts = rows.to(device), counts.to(device)  # [B, S]
        self.valid = self.rows >= 0
        popularity = prior.popularity.to(device) * prior.backoff
        # background (popularity) mass under every node of every depth; depth 0 is the root
        self.node_mass = [popularity.sum().reshape(1)]
        for depth in range(index.num_levels):
            mass = torch.zeros(index.num_nodes[depth + 1], device=device)
            self.node_mass.append(mass.index_add_(0, index.row_nodes[depth], popularity))

    def step(self, depth: int, node: torch.Tensor) -> torch.Tensor:
        """`weight * log(mass(child) / mass(node))` for every level-`depth` token, `[B, K, W]` (-inf: no child)."""
        index = self.index
        width = index.level_width[depth]
        batch, beams = node.shape
        tokens = torch.arange(width, device=node.device).expand(batch, beams, width)
        child = index.child(depth, node[..., None].expand(batch, beams, width), tokens)
        child_mass = torch.where(child >= 0, self.node_mass[depth + 1][child.clamp(min=0)], 0.0)
        parent_mass = torch.where(node >= 0, self.node_mass[depth][node.clamp(min=0)], 0.0)
        # the successors' counts under the beam's node and under each of its children
        safe_rows = self.rows.clamp(min=0)
        if depth == 0:
            successor_node = torch.zeros_like(safe_rows)
        else:
            successor_node = index.row_nodes[depth - 1][safe_rows]
        match = (successor_node[:, None, :] == node[:, :, None]) & self.valid[:, None, :]  # [B, K, S]
        weights = torch.where(match, self.counts[:, None, :], 0.0)
        relative = index.row_relative[safe_rows, depth][:, None, :].expand_as(weights)
        child_mass = child_mass.scatter_add(-1, relative, weights)
        parent_mass = parent_mass + weights.sum(-1)
        ratio = child_mass.clamp(min=1e-30).log() - parent_mass.clamp(min=1e-30).log()[..., None]
        return self.weight * ratio.masked_fill(child < 0, -math.inf)


# ======================================================================================================================
# Fast beam search (issue 7)
# ======================================================================================================================


@dataclass
class TigerBeamSearchOutput(ModelOutput):
    """
    Output of [`tiger_beam_search`].

    Args:
        sequences (`torch.LongTensor` of shape `(batch_size * num_return_sequences, 1 + num_levels)`):
            Decoder start token followed by the semantic-ID tokens, best first per input (as `generate()` returns
            them). Rows beyond the number of items the catalogue can offer are filled with `pad_token_id`.
        sequences_scores (`torch.FloatTensor` of shape `(batch_size * num_return_sequences,)`):
            Sum of the generated tokens' log-probabilities divided by ``generated_length ** length_penalty``
            (transformers' beam score); ``-inf`` for padding rows.
        catalogue_indices (`torch.LongTensor` of shape `(batch_size, num_return_sequences)`):
            Catalogue row of each result, -1 for padding rows.
    """

    sequences: torch.LongTensor | None = None
    sequences_scores: torch.FloatTensor | None = None
    catalogue_indices: torch.LongTensor | None = None


def _clamp_fp16(hidden_states: torch.Tensor) -> torch.Tensor:
    # Same guard as T5Block: keep fp16 activations finite.
    if hidden_states.dtype != torch.float16:
        return hidden_states
    max_value = torch.finfo(torch.float16).max
    clamp_value = torch.where(torch.isinf(hidden_states).any(), max_value - 1000, max_value)
    return torch.clamp(hidden_states, min=-clamp_value, max=clamp_value)


class _T5BeamDecoder:
    """
    Incremental T5 decoder for beams that share one encoder output.

    Reuses the model's own modules and weights (embedding, layer norms, q/k/v/o projections -- the self-attention
    q/k/v weights concatenated into one matmul --, the first layer's relative position bias, the feed-forward
    sub-layers, lm_head); only the two attention products are written out, so that:

    - cross-attention keys/values are projected once per input (``[B, H, d, S]`` / ``[B, H, S, d]``) and shared by
      its beams by broadcast: the K beams of an input are the *query* axis of one matmul
      ``[B, H, K, d] @ [B, H, d, S]`` (no copy per beam, no reordering);
    - the self-attention cache is one ``[B, K, 2 * H * d]`` tensor per generated position (t <= num_levels + 1;
      the decoder start position is ``[B, 1, 2 * H * d]``, shared by the beams), re-ranked by ``index_select``.
    """

    def __init__(self, model: nn.Module, encoder_hidden_states: torch.Tensor, encoder_attention_mask):
        decoder = model.get_decoder()
        config = model.config
        self.decoder = decoder
        self.blocks = list(decoder.block)
        first_attention = self.blocks[0].layer[0].SelfAttention
        self.num_heads = first_attention.n_heads
        self.head_dim = first_attention.key_value_proj_dim
        self.inner_dim = self.num_heads * self.head_dim
        self.relative_attention = first_attention if first_attention.has_relative_attention_bias else None
        self.scale_output = getattr(
            config, "scale_decoder_outputs", getattr(config, "tie_word_embeddings", True)
        )
        self.model_dim = config.d_model
        # the vocabulary projection runs in fp32 (see `logits`); cast once per search, not per step (a no-op for
        # fp32 weights)
        self.output_weight = model.get_output_embeddings().weight.float()
        # TIGER's prefix output vectors (TigerConfig.num_prefix_embeddings): logits that depend on the beam's prefix
        self.prefix_logits = model.prefix_logits if getattr(config, "num_prefix_embeddings", 0) else None
        # one matmul for q, k and v when they are plain linear layers (else, e.g. adapters or quantised layers,
        # their own forward is called)
        self.qkv_weights = []
        for block in self.blocks:
            attention = block.layer[0].SelfAttention
            projections = (attention.q, attention.k, attention.v)
            plain = all(type(p) is nn.Linear and p.bias is None for p in projections)
            self.qkv_weights.append(torch.cat([p.weight for p in projections], dim=0) if plain else None)

        batch_size, source_length, _ = encoder_hidden_states.shape
        dtype = encoder_hidden_states.dtype
        self.cross_keys_t, self.cross_values = [], []
        shape = (batch_size, source_length, self.num_heads, self.head_dim)
        for block in self.blocks:
            attention = block.layer[1].EncDecAttention
            scale = getattr(attention, "scaling", 1.0)
            keys = attention.k(encoder_hidden_states).view(shape)
            if scale != 1.0:
                keys = keys * scale
            self.cross_keys_t.append(keys.permute(0, 2, 3, 1).contiguous())  # [B, H, d, S]
            self.cross_values.append(
                attention.v(encoder_hidden_states).view(shape).transpose(1, 2).contiguous()
            )
        if encoder_attention_mask is None:
            self.cross_bias = None
        else:
            keep = encoder_attention_mask.to(torch.bool)[:, None, None, :]  # [B, 1, 1, S]
            self.cross_bias = torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(
                ~keep, torch.finfo(dtype).min
            )
        self.self_cache: list[list[torch.Tensor]] = [[] for _ in self.blocks]
        self.length = 0

    def step(self, tokens: torch.Tensor, decoder_ids: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            tokens (`torch.LongTensor` of shape `(B, K)`): the newest token of each beam.
            decoder_ids (`torch.LongTensor` of shape `(B, K, t)`, *optional*): every decoder token of each beam so
                far (start token first, `tokens` last); needed by models with prefix output vectors.

        Returns:
            `torch.FloatTensor` of shape `(B, K, V)`: next-token logits, float32.
        """
        batch_size, num_beams = tokens.shape
        rows = batch_size * num_beams
        heads, head_dim, inner = self.num_heads, self.head_dim, self.inner_dim
        self.length += 1
        hidden = self.decoder.dropout(self.decoder.embed_tokens(tokens.reshape(rows)))  # [B*K, D]
        if self.relative_attention is not None:
            bias = self.relative_attention.compute_bias(
                1, self.length, device=tokens.device, past_seen_tokens=self.length - 1
            )  # [1, H, 1, t]
            position_bias = bias[0, :, 0, :].to(hidden.dtype)  # [H, t]
        else:
            position_bias = None
        for i, block in enumerate(self.blocks):
            # self-attention over this beam's own (short) history
            layer = block.layer[0]
            attention = layer.SelfAttention
            normed = layer.layer_norm(hidden)
            if self.qkv_weights[i] is not None:
                qkv = nn.functional.linear(normed, self.qkv_weights[i])  # [B*K, 3 * inner]
            else:
                qkv = torch.cat([attention.q(normed), attention.k(normed), attention.v(normed)], dim=-1)
            query = qkv[:, :inner].view(batch_size, num_beams, heads, head_dim)
            self.self_cache[i].append(qkv[:, inner:].view(batch_size, num_beams, 2 * inner))
            # one [B, K or 1, 2 * inner] tensor per position (position 0, the decoder start, is shared by beams)
            scale = getattr(attention, "scaling", 1.0)
            scores = torch.stack(
                [
                    (query * kv[..., :inner].view(batch_size, -1, heads, head_dim)).sum(-1)
                    for kv in self.self_cache[i]
                ],
                dim=-1,
            )  # [B, K, H, t]
            if scale != 1.0:
                scores = scores * scale
            if position_bias is not None:
                scores = scores + position_bias
            weights = torch.softmax(scores, dim=-1)
            context = weights[..., 0, None] * self.self_cache[i][0][..., inner:].view(
                batch_size, -1, heads, head_dim
            )
            for position in range(1, self.length):
                values = self.self_cache[i][position][..., inner:].view(batch_size, -1, heads, head_dim)
                context = context + weights[..., position, None] * values
            context = context.reshape(rows, inner)
            hidden = _clamp_fp16(hidden + layer.dropout(attention.o(context)))

            # cross-attention: the K beams of an input are K queries against its shared keys/values
            layer = block.layer[1]
            attention = layer.EncDecAttention
            query = attention.q(layer.layer_norm(hidden)).view(batch_size, num_beams, heads, head_dim)
            scores = torch.matmul(query.transpose(1, 2), self.cross_keys_t[i])  # [B, H, K, S]
            if self.cross_bias is not None:
                scores = scores + self.cross_bias
            weights = torch.softmax(scores, dim=-1)
            context = torch.matmul(weights, self.cross_values[i]).transpose(1, 2).reshape(rows, inner)
            hidden = _clamp_fp16(hidden + layer.dropout(attention.o(context)))

            hidden = _clamp_fp16(block.layer[-1](hidden))
        hidden = self.decoder.dropout(self.decoder.final_layer_norm(hidden))
        if self.scale_output:
            hidden = hidden * (self.model_dim**-0.5)
        # the output projection in fp32 even under bf16 autocast: bf16 logits (8 bits of mantissa) reorder
        # near-tied items; this matmul is a small share of a decoding step
        with torch.autocast(hidden.device.type, enabled=False):
            logits = nn.functional.linear(hidden.float(), self.output_weight)
            if self.prefix_logits is not None:
                if decoder_ids is None:
                    raise ValueError("a model with prefix output vectors needs decoder_ids at every step")
                extra = self.prefix_logits(hidden.float()[:, None], decoder_ids.reshape(rows, -1), logits.shape[-1])
                logits = logits + extra[:, 0]
        return logits.view(batch_size, num_beams, -1)

    def reorder(self, parents: torch.Tensor) -> None:
        """Keeps, for each new beam, the self-attention cache of its parent. `parents`: `(B, K_new)` beam indices."""
        batch_size, new_beams = parents.shape
        old_beams = self.self_cache[0][-1].shape[1]
        offsets = torch.arange(batch_size, device=parents.device)[:, None] * old_beams
        flat = (parents + offsets).reshape(-1)
        for cache in self.self_cache:
            for position in range(1, len(cache)):  # position 0 is per input, not per beam
                kv = cache[position]
                cache[position] = (
                    kv.reshape(-1, kv.shape[-1]).index_select(0, flat).view(batch_size, new_beams, -1)
                )


@torch.no_grad()
def tiger_beam_search(
    model: nn.Module,
    input_ids: torch.LongTensor | None = None,
    attention_mask: torch.Tensor | None = None,
    *,
    index: CatalogueIndex,
    num_beams: int = 20,
    num_return_sequences: int | None = None,
    length_penalty: float = 1.0,
    append_eos: bool = False,
    encoder_outputs=None,
    decoder_start_token_id: int | None = None,
    pad_token_id: int | None = None,
    item_prior: TransitionPrior | None = None,
    last_rows: torch.LongTensor | None = None,
) -> TigerBeamSearchOutput:
    r"""
    Trie-constrained beam search for a T5 encoder-decoder, specialised to fixed-length semantic IDs.

    Gives the same results as `model.generate(..., num_beams=num_beams, max_new_tokens=num_levels,
    logits_processor=[TrieConstrainedLogitsProcessor(index)], do_sample=False)` -- same items in the same order,
    same `sequences_scores` up to float rounding -- but much faster:

    - the encoder runs once per input, and each decoder layer projects the encoder output to cross-attention
      keys/values once per input; the beams of an input share them by broadcast (no copies, no reordering);
    - the self-attention cache holds only the few generated levels and is gathered along the beam axis;
    - step 0 decodes one row per input and keeps the best ``min(num_beams, #valid first codes)`` first codes;
    - each step ranks only the current level's allowed tokens (a ``[B, K, level_width]`` slice masked by the
      trie index) instead of the whole vocabulary.

    Scoring is transformers' beam scoring: each step adds the float32 ``log_softmax`` over the full vocabulary
    (masked, not renormalised); the final score is ``sum / generated_length ** length_penalty`` with
    ``generated_length = num_levels`` (``+ 1`` with `append_eos`), the decoder start token not counted. As every
    hypothesis has the same length, the length penalty rescales scores without changing the ranking.

    Differences from transformers, by design: when an input's trie offers fewer than `num_return_sequences`
    items, the missing rows are padding (`pad_token_id` tokens, score ``-inf``, catalogue index -1) instead of
    transformers' duplicated filler hypotheses with scores around -1e9. Other logits processors, sampling and
    `min_length`-style constraints are not supported (use transformers' beam search for those).

    Args:
        model (`T5ForConditionalGeneration`-like):
            Provides `get_encoder()`, `get_decoder()` (a `T5Stack`), `get_output_embeddings()` and `config`.
        input_ids (`torch.LongTensor` of shape `(batch_size, source_length)`, *optional*):
            Encoder input ids (ignored when `encoder_outputs` is given).
        attention_mask (`torch.Tensor` of shape `(batch_size, source_length)`, *optional*):
            1 for real tokens, 0 for padding.
        index (`CatalogueIndex`):
            The catalogue trie (moved to the model's device if needed).
        num_beams (`int`, *optional*, defaults to 20):
            Beam width.
        num_return_sequences (`int`, *optional*, defaults to `num_beams`):
            Results per input, at most `num_beams`.
        length_penalty (`float`, *optional*, defaults to 1.0):
            Exponent of the generated length in the final score.
        append_eos (`bool`, *optional*, defaults to False):
            Generate `eos_token_id` after the semantic ID (one more decoder step, whose log-probability is added),
            i.e. match `generate(max_new_tokens=num_levels + 1)`.
        encoder_outputs (`ModelOutput` or `tuple`, *optional*):
            Precomputed encoder outputs (first element: `(batch_size, source_length, d_model)` hidden states).
        decoder_start_token_id (`int`, *optional*), pad_token_id (`int`, *optional*):
            Default to the model config's values.
        item_prior ([`TransitionPrior`], *optional*):
            A count prior fused into the ranking: each step adds ``item_prior.weight`` times the log-ratio of the
            prior mass under the child and under the beam's prefix, so a complete item's score gains
            ``weight * log P(item | last history item)`` (and `sequences_scores` are the fused scores).
        last_rows (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Catalogue row of each input's last history item, for `item_prior`; read from `input_ids` (the
            `num_levels` tokens before the last end-of-sequence token) when not given.

    Returns:
        [`TigerBeamSearchOutput`].
    """
    config = model.config
    if decoder_start_token_id is None:
        decoder_start_token_id = config.decoder_start_token_id
    if decoder_start_token_id is None:
        decoder_start_token_id = config.pad_token_id
    if pad_token_id is None:
        pad_token_id = config.pad_token_id if config.pad_token_id is not None else 0
    num_return_sequences = num_beams if num_return_sequences is None else num_return_sequences
    if num_beams < 1 or not 1 <= num_return_sequences <= num_beams:
        raise ValueError(
            f"need num_beams >= 1 and 1 <= num_return_sequences <= num_beams, got num_beams={num_beams}, "
            f"num_return_sequences={num_return_sequences}"
        )
    if append_eos and index.eos_token_id is None:
        raise ValueError("append_eos=True needs an index with an eos_token_id")

    if encoder_outputs is None:
        if input_ids is None:
            raise ValueError("pass input_ids or encoder_outputs")
        encoder_outputs = model.get_encoder()(
            input_ids=input_ids, attention_mask=attention_mask, return_dict=True
        )
    encoder_hidden_states = encoder_outputs[0]
    device = encoder_hidden_states.device
    batch_size = encoder_hidden_states.shape[0]
    if index.device != device:
        index = index.to(device)

    prior = None
    if item_prior is not None and item_prior.weight > 0:
        if last_rows is None:
            if input_ids is None:
                raise ValueError("item_prior needs input_ids or last_rows (the last history item of each input)")
            eos = config.eos_token_id if config.eos_token_id is not None else index.eos_token_id
            if eos is None:
                raise ValueError("item_prior needs last_rows when the model has no eos_token_id")
            last_rows = last_item_rows(input_ids, index, eos)
        if last_rows.shape != (batch_size,):
            raise ValueError(f"last_rows must have shape ({batch_size},), got {tuple(last_rows.shape)}")
        prior = _PriorScorer(item_prior, index, last_rows)

    decoder = _T5BeamDecoder(model, encoder_hidden_states, attention_mask)
    num_steps = index.num_levels + int(append_eos)
    tokens = torch.full((batch_size, 1), decoder_start_token_id, dtype=torch.long, device=device)
    node = torch.zeros((batch_size, 1), dtype=torch.long, device=device)  # depth-0 node: the root
    beam_scores = torch.zeros((batch_size, 1), dtype=torch.float32, device=device)
    generated = torch.empty((batch_size, 1, 0), dtype=torch.long, device=device)
    for step in range(num_steps):
        decoder_ids = None
        if decoder.prefix_logits is not None:
            start = generated.new_full((*generated.shape[:2], 1), decoder_start_token_id)
            decoder_ids = torch.cat((start, generated), dim=-1)
        logits = decoder.step(tokens, decoder_ids)  # [B, K, V], float32
        # log_softmax over the whole vocabulary, evaluated only on the columns this step can choose from
        log_normalizer = torch.logsumexp(logits, dim=-1, keepdim=True)
        if step < index.num_levels:
            low, width = index.level_low[step], index.level_width[step]
            allowed = index.children_mask(step, node)  # [B, K, W]
            keep = min(num_beams, index.num_nodes[step + 1])
        else:  # the end-of-sequence step: one continuation per live beam
            low, width = index.eos_token_id, 1
            allowed = (node >= 0)[..., None]
            keep = node.shape[1]
        candidates = beam_scores[..., None] + (logits[..., low : low + width] - log_normalizer)
        if prior is not None and step < index.num_levels:
            candidates = candidates + prior.step(step, node)
        candidates = candidates.masked_fill(~allowed, -math.inf).view(batch_size, -1)
        beam_scores, flat = candidates.topk(keep, dim=-1)  # [B, keep], sorted
        parents = torch.div(flat, width, rounding_mode="floor")
        relative = flat - parents * width
        parent_node = node.gather(1, parents)
        if step < index.num_levels:
            node = index.child(step, parent_node, relative)
        else:
            node = parent_node
        node = torch.where(torch.isfinite(beam_scores), node, -1)
        tokens = relative + low
        generated = torch.cat(
            (torch.take_along_dim(generated, parents[..., None], dim=1), tokens[..., None]), -1
        )
        if step + 1 < num_steps:
            decoder.reorder(parents)

    num_kept = beam_scores.shape[1]
    scores = beam_scores / (num_steps**length_penalty)
    alive = node >= 0
    rows = torch.where(alive, index.leaf_to_row[node.clamp(min=0)], -1)
    scores = scores.masked_fill(~alive, -math.inf)
    generated = generated.masked_fill(~alive[..., None], pad_token_id)
    if num_kept < num_return_sequences:
        missing = num_return_sequences - num_kept
        generated = torch.cat(
            (generated, generated.new_full((batch_size, missing, num_steps), pad_token_id)), 1
        )
        scores = torch.cat((scores, scores.new_full((batch_size, missing), -math.inf)), 1)
        rows = torch.cat((rows, rows.new_full((batch_size, missing), -1)), 1)
    generated = generated[:, :num_return_sequences]
    start = generated.new_full((batch_size, num_return_sequences, 1), decoder_start_token_id)
    sequences = torch.cat((start, generated), dim=-1).view(batch_size * num_return_sequences, 1 + num_steps)
    return TigerBeamSearchOutput(
        sequences=sequences,
        sequences_scores=scores[:, :num_return_sequences].reshape(-1),
        catalogue_indices=rows[:, :num_return_sequences],
    )
