"""Recall@K and NDCG@K for next-item retrieval with one target item per example.

The functions take ranked item lists (best first) and one target per example. A hit is an exact match of the
target: in TIGER the items are compared by their full semantic ID *including the collision level*, so two items
sharing their first codes are never confused (`ranks_from_semantic_ids` does this on token-id arrays).

Conventions (fixed here so every caller agrees):

- a target absent from the list, or ranked at position >= K, scores 0 at K;
- a list shorter than K is scored as is (K larger than the number of returned items is not an error);
- `None` entries (e.g. padding for a catalogue smaller than the beam count) are "no item": they keep their
  position but never match;
- a real item listed twice is a malformed ranking and raises `ValueError`;
- with `scores`, items whose score equals the target's score are tied with it; the result is the expected value
  over a uniformly random order of the tied items (neither optimistic nor pessimistic).

The same metric is available as an `evaluate` module: `load_evaluate_metric()` (or `evaluate.load(EVALUATE_SCRIPT)`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Sequence

import numpy as np

__all__ = [
    "EVALUATE_SCRIPT",
    "compute_retrieval_metrics",
    "load_evaluate_metric",
    "metrics_from_ranks",
    "ndcg_at_k",
    "ranks_from_semantic_ids",
    "recall_at_k",
    "target_ranks",
]

EVALUATE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "training", "tiger_retrieval.py")
"""Path of the local `evaluate` metric script (works offline): `evaluate.load(EVALUATE_SCRIPT)`."""


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _tie_span(ranked: Sequence, target: Hashable, scores: Sequence[float] | None, index: int) -> tuple[int, int]:
    """Return the 0-based span [start, stop) of positions the target may take; (-1, -1) when it is absent."""
    seen = set()
    position = -1
    for pos, item in enumerate(ranked):
        if item is None:
            continue
        if item in seen:
            raise ValueError(f"ranked list of example {index} contains item {item!r} more than once")
        seen.add(item)
        if position < 0 and item == target:
            position = pos
    if position < 0:
        return -1, -1
    if scores is None:
        return position, position + 1
    if len(scores) != len(ranked):
        raise ValueError(
            f"example {index}: {len(scores)} scores for a ranked list of {len(ranked)} items"
        )
    target_score = float(scores[position])
    values = np.asarray(scores, dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError(f"example {index}: scores contain NaN")
    better = int((values > target_score).sum())
    tied = int((values == target_score).sum())
    return better, better + tied


def target_ranks(
    ranked_item_lists: Sequence[Sequence[Hashable]],
    targets: Sequence[Hashable],
    scores: Sequence[Sequence[float]] | None = None,
) -> list[tuple[int, int]]:
    """Position span of each target in its ranked list.

    Args:
        ranked_item_lists (`Sequence[Sequence[Hashable]]`): per example, items best first. Shape: (num_examples, *).
        targets (`Sequence[Hashable]`): the relevant item of each example. Shape: (num_examples,).
        scores (`Sequence[Sequence[float]]`, *optional*, defaults to `None`): per example, one score per listed
            item (higher is better); used only to detect ties with the target.

    Returns:
        `list[tuple[int, int]]`: per example the 0-based span `[start, stop)` of positions the target occupies
        (`stop - start > 1` for ties), or `(-1, -1)` when the target is not in the list.
    """
    if len(ranked_item_lists) != len(targets):
        raise ValueError(f"{len(ranked_item_lists)} ranked lists but {len(targets)} targets")
    if scores is not None and len(scores) != len(targets):
        raise ValueError(f"{len(scores)} score lists but {len(targets)} targets")
    return [
        _tie_span(ranked, target, None if scores is None else scores[i], i)
        for i, (ranked, target) in enumerate(zip(ranked_item_lists, targets))
    ]


def _span_metrics(span: tuple[int, int], k: int) -> tuple[float, float]:
    start, stop = span
    if start < 0 or start >= k:
        return 0.0, 0.0
    positions = range(start, stop)
    inside = [p for p in positions if p < k]
    recall = len(inside) / len(positions)
    ndcg = sum(1.0 / math.log2(p + 2) for p in inside) / len(positions)
    return recall, ndcg


def recall_at_k(
    ranked_item_lists: Sequence[Sequence[Hashable]],
    targets: Sequence[Hashable],
    k: int,
    scores: Sequence[Sequence[float]] | None = None,
) -> float:
    """Mean Recall@K: the share of examples whose target is among the first K items.

    Args:
        ranked_item_lists (`Sequence[Sequence[Hashable]]`): per example, items best first.
        targets (`Sequence[Hashable]`): one target item per example.
        k (`int`): cut-off, >= 1.
        scores (`Sequence[Sequence[float]]`, *optional*): per-item scores, only used to resolve ties.

    Returns:
        `float` in [0, 1] (0.0 for no examples).

    Example:

    ```python
    >>> recall_at_k([[3, 1, 2], [5, 6]], targets=[1, 7], k=2)
    0.5
    ```
    """
    _check_k(k)
    spans = target_ranks(ranked_item_lists, targets, scores)
    return float(np.mean([_span_metrics(s, k)[0] for s in spans])) if spans else 0.0


def ndcg_at_k(
    ranked_item_lists: Sequence[Sequence[Hashable]],
    targets: Sequence[Hashable],
    k: int,
    scores: Sequence[Sequence[float]] | None = None,
) -> float:
    """Mean NDCG@K with one relevant item per example: `1 / log2(rank + 2)` for a hit at 0-based `rank < K`.

    Args:
        ranked_item_lists (`Sequence[Sequence[Hashable]]`): per example, items best first.
        targets (`Sequence[Hashable]`): one target item per example.
        k (`int`): cut-off, >= 1.
        scores (`Sequence[Sequence[float]]`, *optional*): per-item scores, only used to resolve ties.

    Returns:
        `float` in [0, 1] (0.0 for no examples).

    Example:

    ```python
    >>> round(ndcg_at_k([[3, 1, 2]], targets=[1], k=2), 4)
    0.6309
    ```
    """
    _check_k(k)
    spans = target_ranks(ranked_item_lists, targets, scores)
    return float(np.mean([_span_metrics(s, k)[1] for s in spans])) if spans else 0.0


def metrics_from_ranks(ranks: np.ndarray | Sequence[int], ks: Sequence[int] = (5, 10)) -> dict[str, float]:
    """Recall@K and NDCG@K from the 0-based rank of each example's target (-1 = not retrieved).

    Args:
        ranks (`np.ndarray` of int): Shape: (num_examples,).
        ks (`Sequence[int]`, *optional*, defaults to `(5, 10)`): cut-offs.

    Returns:
        `dict[str, float]` with keys `recall@K` and `ndcg@K` for every K.
    """
    ranks = np.asarray(ranks, dtype=np.int64).reshape(-1)
    out: dict[str, float] = {}
    for k in ks:
        _check_k(k)
        hit = (ranks >= 0) & (ranks < k)
        gains = np.where(hit, 1.0 / np.log2(np.clip(ranks, 0, None) + 2.0), 0.0)
        out[f"recall@{k}"] = float(hit.mean()) if ranks.size else 0.0
        out[f"ndcg@{k}"] = float(gains.mean()) if ranks.size else 0.0
    return out


def compute_retrieval_metrics(
    ranked_item_lists: Sequence[Sequence[Hashable]],
    targets: Sequence[Hashable],
    ks: Sequence[int] = (5, 10),
    scores: Sequence[Sequence[float]] | None = None,
) -> dict[str, float]:
    """Recall@K and NDCG@K for every K in `ks`.

    Args:
        ranked_item_lists (`Sequence[Sequence[Hashable]]`): per example, items best first (item ids, or semantic-ID
            tuples). Shape: (num_examples, *).
        targets (`Sequence[Hashable]`): one target per example. Shape: (num_examples,).
        ks (`Sequence[int]`, *optional*, defaults to `(5, 10)`): cut-offs.
        scores (`Sequence[Sequence[float]]`, *optional*): per-item scores, only used to resolve ties.

    Returns:
        `dict[str, float]`: `{"recall@5": ..., "ndcg@5": ..., "recall@10": ..., "ndcg@10": ...}`.
    """
    spans = target_ranks(ranked_item_lists, targets, scores)
    out: dict[str, float] = {}
    for k in ks:
        _check_k(k)
        per_example = [_span_metrics(s, k) for s in spans]
        out[f"recall@{k}"] = float(np.mean([r for r, _ in per_example])) if spans else 0.0
        out[f"ndcg@{k}"] = float(np.mean([n for _, n in per_example])) if spans else 0.0
    return out


def ranks_from_semantic_ids(generated: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank of each label among generated semantic IDs (exact match of every level), -1 if absent.

    Args:
        generated (`np.ndarray` of int): generated semantic-ID token ids, best first; rows padded with negative
            values (e.g. -100) never match. Shape: (num_examples, num_returned, num_levels).
        labels (`np.ndarray` of int): the target's semantic-ID token ids, every level including the collision
            level. Shape: (num_examples, num_levels).

    Returns:
        `np.ndarray` of int64, shape (num_examples,).
    """
    generated = np.asarray(generated)
    labels = np.asarray(labels)
    if generated.ndim != 3 or labels.ndim != 2 or generated.shape[0] != labels.shape[0]:
        raise ValueError(
            f"expected generated (N, R, L) and labels (N, L); got {generated.shape} and {labels.shape}"
        )
    if generated.shape[2] != labels.shape[1]:
        raise ValueError(
            f"generated sequences have {generated.shape[2]} levels but labels have {labels.shape[1]}"
        )
    if (labels < 0).any():
        raise ValueError("labels contain padding (negative ids): every example needs its full semantic ID")
    match = (generated == labels[:, None, :]).all(axis=-1)
    found = match.any(axis=1)
    return np.where(found, match.argmax(axis=1), -1).astype(np.int64)


def load_evaluate_metric(**kwargs):
    """Load the metric as an `evaluate.EvaluationModule` from the script shipped in the package (no Hub access).

    Example:

    ```python
    >>> metric = load_evaluate_metric()
    >>> metric.compute(predictions=[[3, 1, 2]], references=[1])["recall@5"]
    1.0
    ```
    """
    import evaluate

    return evaluate.load(EVALUATE_SCRIPT, **kwargs)
