"""Next-item retrieval metrics with one target item per example: Recall@K, NDCG@K, MRR@K, and the beyond-accuracy
catalogue coverage@K and popularity percentile@K (novelty; lower = less popular items recommended).

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
  over a uniformly random order of the tied items (neither optimistic nor pessimistic);
- MRR@K is `1 / (rank + 1)` for a target at 0-based `rank < K`, else 0;
- coverage@K is the share of the catalogue recommended to at least one example within its first K entries;
- popularity percentile@K is the mean, over every item recommended within the first K entries of every list
  (pooled), of the item's popularity percentile in training (see [`popularity_percentiles`]); it is NaN when no
  list recommends anything.

[`compute_recommendation_metrics`] computes all of them in one call; the Trainer's evaluation, `results.json`,
`scripts/evaluate.py` and the count baselines all go through it.

The same metric is available as an `evaluate` module: `load_evaluate_metric()` (or `evaluate.load(EVALUATE_SCRIPT)`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Container, Hashable, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "EVALUATE_SCRIPT",
    "catalogue_coverage",
    "compute_recommendation_metrics",
    "compute_retrieval_metrics",
    "load_evaluate_metric",
    "metrics_from_ranks",
    "mrr_at_k",
    "ndcg_at_k",
    "popularity_percentile",
    "popularity_percentiles",
    "ranks_from_semantic_ids",
    "recall_at_k",
    "semantic_id_lists",
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


def _span_metrics(span: tuple[int, int], k: int) -> tuple[float, float, float]:
    """(recall, ndcg, reciprocal rank) at K of one target spanning positions [start, stop) (ties averaged)."""
    start, stop = span
    if start < 0 or start >= k:
        return 0.0, 0.0, 0.0
    positions = range(start, stop)
    inside = [p for p in positions if p < k]
    recall = len(inside) / len(positions)
    ndcg = sum(1.0 / math.log2(p + 2) for p in inside) / len(positions)
    reciprocal = sum(1.0 / (p + 1) for p in inside) / len(positions)
    return recall, ndcg, reciprocal


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


def mrr_at_k(
    ranked_item_lists: Sequence[Sequence[Hashable]],
    targets: Sequence[Hashable],
    k: int,
    scores: Sequence[Sequence[float]] | None = None,
) -> float:
    """Mean reciprocal rank at K: `1 / (rank + 1)` for a target at 0-based `rank < K`, 0 otherwise.

    Ties (with `scores`) give the mean of `1 / (p + 1)` over the tied positions `p` (0 for those at or beyond K).

    Example:

    ```python
    >>> mrr_at_k([[3, 1, 2], [5, 6]], targets=[1, 7], k=2)
    0.25
    ```
    """
    _check_k(k)
    spans = target_ranks(ranked_item_lists, targets, scores)
    return float(np.mean([_span_metrics(s, k)[2] for s in spans])) if spans else 0.0


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
    """Recall@K, NDCG@K and MRR@K from the 0-based rank of each example's target (-1 = not retrieved).

    Args:
        ranks (`np.ndarray` of int): Shape: (num_examples,).
        ks (`Sequence[int]`, *optional*, defaults to `(5, 10)`): cut-offs.

    Returns:
        `dict[str, float]` with keys `recall@K`, `ndcg@K` and `mrr@K` for every K.
    """
    ranks = np.asarray(ranks, dtype=np.int64).reshape(-1)
    out: dict[str, float] = {}
    for k in ks:
        _check_k(k)
        hit = (ranks >= 0) & (ranks < k)
        gains = np.where(hit, 1.0 / np.log2(np.clip(ranks, 0, None) + 2.0), 0.0)
        reciprocal = np.where(hit, 1.0 / (np.clip(ranks, 0, None) + 1.0), 0.0)
        out[f"recall@{k}"] = float(hit.mean()) if ranks.size else 0.0
        out[f"ndcg@{k}"] = float(gains.mean()) if ranks.size else 0.0
        out[f"mrr@{k}"] = float(reciprocal.mean()) if ranks.size else 0.0
    return out


def compute_retrieval_metrics(
    ranked_item_lists: Sequence[Sequence[Hashable]],
    targets: Sequence[Hashable],
    ks: Sequence[int] = (5, 10),
    scores: Sequence[Sequence[float]] | None = None,
) -> dict[str, float]:
    """Recall@K, NDCG@K and MRR@K for every K in `ks`.

    Args:
        ranked_item_lists (`Sequence[Sequence[Hashable]]`): per example, items best first (item ids, or semantic-ID
            tuples). Shape: (num_examples, *).
        targets (`Sequence[Hashable]`): one target per example. Shape: (num_examples,).
        ks (`Sequence[int]`, *optional*, defaults to `(5, 10)`): cut-offs.
        scores (`Sequence[Sequence[float]]`, *optional*): per-item scores, only used to resolve ties.

    Returns:
        `dict[str, float]`: `{"recall@5": ..., "ndcg@5": ..., "mrr@5": ..., "recall@10": ..., ...}`.
    """
    return _metrics_from_spans(target_ranks(ranked_item_lists, targets, scores), ks)


def _metrics_from_spans(spans: Sequence[tuple[int, int]], ks: Sequence[int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ks:
        _check_k(k)
        per_example = np.asarray([_span_metrics(s, k) for s in spans], dtype=np.float64).reshape(-1, 3)
        for column, name in enumerate(("recall", "ndcg", "mrr")):
            out[f"{name}@{k}"] = float(per_example[:, column].mean()) if spans else 0.0
    return out


def popularity_percentiles(
    counts: Mapping[Hashable, int], catalogue: Iterable[Hashable] | None = None
) -> dict[Hashable, float]:
    """Popularity percentile of every catalogue item: the share of the catalogue less popular than it, ties halved.

    `percentile(i) = (#{j : count_j < count_i} + (#{j : count_j == count_i} - 1) / 2) / (N - 1)` over the `N`
    catalogue items (items missing from `counts` count 0), so the least popular item scores 0, the most popular 1,
    and tied items share the mid-point of their span. A one-item catalogue scores 0.5.

    Args:
        counts (`Mapping[Hashable, int]`): training interactions per item (e.g. `PopularityRecommender.popularity`).
        catalogue (`Iterable[Hashable]`, *optional*): every item that can be recommended (defaults to the keys of
            `counts`); items of `counts` outside it raise `ValueError`.

    Returns:
        `dict` item -> percentile in [0, 1].

    Example:

    ```python
    >>> popularity_percentiles({"a": 5, "b": 1, "c": 1}, catalogue=["a", "b", "c", "d"])
    {'a': 1.0, 'b': 0.5, 'c': 0.5, 'd': 0.0}
    ```
    """
    items = list(counts) if catalogue is None else list(dict.fromkeys(catalogue))
    if not items:
        raise ValueError("cannot rank the popularity of an empty catalogue")
    known = set(items)
    outside = [item for item in counts if item not in known]
    if outside:
        raise ValueError(f"{len(outside)} counted items are not in the catalogue, e.g. {outside[:3]}")
    values = np.asarray([counts.get(item, 0) for item in items], dtype=np.float64)
    if (values < 0).any():
        raise ValueError("popularity counts must be >= 0")
    if len(items) == 1:
        return {items[0]: 0.5}
    ordered = np.sort(values)
    below = np.searchsorted(ordered, values, side="left")
    tied = np.searchsorted(ordered, values, side="right") - below
    percentile = (below + (tied - 1) / 2.0) / (len(items) - 1)
    return dict(zip(items, percentile.tolist()))


def _top_items(ranked: Sequence[Hashable], k: int) -> list[Hashable]:
    return [item for item in list(ranked)[:k] if item is not None]


def catalogue_coverage(ranked_item_lists: Sequence[Sequence[Hashable]], k: int, catalogue_size: int) -> float:
    """Coverage@K: the share of the catalogue found within the first K entries of at least one list.

    Example:

    ```python
    >>> catalogue_coverage([[1, 2, 3], [2, 4]], k=2, catalogue_size=8)
    0.375
    ```
    """
    _check_k(k)
    if int(catalogue_size) < 1:
        raise ValueError(f"catalogue_size must be >= 1, got {catalogue_size}")
    covered = {item for ranked in ranked_item_lists for item in _top_items(ranked, k)}
    if len(covered) > catalogue_size:
        raise ValueError(
            f"{len(covered)} distinct items recommended but the catalogue has only {catalogue_size}"
        )
    return len(covered) / int(catalogue_size)


def popularity_percentile(
    ranked_item_lists: Sequence[Sequence[Hashable]], k: int, percentiles: Mapping[Hashable, float]
) -> float:
    """Mean popularity percentile of the items recommended within the first K entries (pooled over all lists).

    NaN when no list recommends anything. An item without a percentile (outside the catalogue) raises
    `ValueError`.

    Example:

    ```python
    >>> popularity_percentile([["a", "b"], []], k=2, percentiles={"a": 1.0, "b": 0.5})
    0.75
    ```
    """
    _check_k(k)
    values = []
    for index, ranked in enumerate(ranked_item_lists):
        for item in _top_items(ranked, k):
            if item not in percentiles:
                raise ValueError(f"example {index} recommends {item!r}, which has no popularity (not in the catalogue)")
            values.append(percentiles[item])
    return float(np.mean(values)) if values else float("nan")


def compute_recommendation_metrics(
    ranked_item_lists: Sequence[Sequence[Hashable]],
    targets: Sequence[Hashable],
    ks: Sequence[int] = (5, 10),
    scores: Sequence[Sequence[float]] | None = None,
    catalogue_size: int | None = None,
    percentiles: Mapping[Hashable, float] | None = None,
    seen: Sequence[bool] | None = None,
) -> dict[str, float]:
    """Every metric of one evaluation: the one function that scores TIGER and the baselines alike.

    Args:
        ranked_item_lists, targets, ks, scores: as in [`compute_retrieval_metrics`] (items may be item ids or
            semantic-ID tuples; both sides must use the same kind).
        catalogue_size (`int`, *optional*): items that could be recommended; adds `coverage@K`.
        percentiles (`Mapping[Hashable, float]`, *optional*): from [`popularity_percentiles`]; adds
            `popularity_percentile@K`.
        seen (`Sequence[bool]`, *optional*): per example, whether its (last history item -> target) pair occurs in
            training; adds `seen_recall@K`, `unseen_recall@K`, `seen_num_examples`, `unseen_num_examples`.

    Returns:
        `dict[str, float]`: `recall@K`, `ndcg@K`, `mrr@K` (+ the optional ones) for every K, and `num_examples`.
    """
    spans = target_ranks(ranked_item_lists, targets, scores)  # once, for every metric below
    out = _metrics_from_spans(spans, ks)
    for k in ks:
        if catalogue_size is not None:
            out[f"coverage@{k}"] = catalogue_coverage(ranked_item_lists, k, catalogue_size)
        if percentiles is not None:
            out[f"popularity_percentile@{k}"] = popularity_percentile(ranked_item_lists, k, percentiles)
    if seen is not None:
        seen = np.asarray(seen, dtype=bool).reshape(-1)
        if seen.size != len(targets):
            raise ValueError(f"{seen.size} seen flags but {len(targets)} targets")
        for name, rows in (("seen", seen), ("unseen", ~seen)):
            for k in ks:
                hits = [_span_metrics(span, k)[0] for span, keep in zip(spans, rows) if keep]
                out[f"{name}_recall@{k}"] = float(np.mean(hits)) if hits else 0.0
            out[f"{name}_num_examples"] = int(rows.sum())
    out["num_examples"] = len(targets)
    return out


def semantic_id_lists(
    generated: np.ndarray, catalogue: Container[tuple[int, ...]] | None = None
) -> list[list[tuple[int, ...] | None]]:
    """Generated semantic IDs `(num_examples, num_returned, num_levels)` as lists of hashable tuples, best first.

    Padding rows become `None` ("no item"), as [`ranks_from_semantic_ids`] treats them: rows holding a negative
    id, rows outside `catalogue` when it is given (constrained generation yields catalogue items only, so such a
    row is padding, e.g. `pad_token_id` filling a list longer than the catalogue), and repeats of a row already
    listed (only padding repeats).
    """
    generated = np.asarray(generated)
    if generated.ndim != 3:
        raise ValueError(f"expected generated semantic IDs of shape (N, R, L), got {generated.shape}")
    valid = (generated >= 0).all(axis=-1)
    lists = []
    for rows, oks in zip(generated.tolist(), valid.tolist()):
        listed: list[tuple[int, ...] | None] = []
        seen: set[tuple[int, ...]] = set()
        for row, ok in zip(rows, oks):
            item = tuple(row)
            keep = ok and item not in seen and (catalogue is None or item in catalogue)
            listed.append(item if keep else None)
            seen.add(item)
        lists.append(listed)
    return lists


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
