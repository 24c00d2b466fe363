"""Collaborative item vectors from the training sequences, to put beside the item-text embeddings of stage 1.

Semantic IDs from text alone give items with similar text similar codes. What TIGER needs to generalise to a
transition it never saw is that the items bought after the same items share codes. `collaborative_item_embeddings`
turns the training rows' item co-occurrences into one vector per item (positive PMI of the pairs within a few
positions, factorised by a truncated SVD); `combine_item_embeddings` appends it to the text embedding, so the RQ-VAE
codes both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def cooccurrence_counts(
    histories: Iterable[Sequence[Any]], targets: Iterable[Any], item_ids: Sequence[Any], window: int = 3
):
    """Symmetric item co-occurrence counts of training rows: each target with its history's last `window` items.

    A user's training rows are the prefixes of one sequence, so pairing every row's target with the items up to
    `window` positions before it counts every pair of the sequence within that distance exactly once. A pair at
    distance `d` adds `1 / d`.

    Args:
        histories (`Iterable[Sequence]`): the rows' histories (oldest first).
        targets (`Iterable`): the rows' targets.
        item_ids (`Sequence`): the catalogue; row/column `i` of the result is `item_ids[i]`.
        window (`int`, *optional*, defaults to 3): the largest distance counted.

    Returns:
        `scipy.sparse.csr_matrix` `[num_items, num_items]`, float64, symmetric, zero diagonal.

    Raises:
        `ValueError`: for `window < 1`, or an item of the rows that is not in `item_ids` (named).
    """
    from scipy import sparse

    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    index = {item: i for i, item in enumerate(item_ids)}
    rows, cols, weights = [], [], []
    for history, target in zip(histories, targets):
        if target not in index:
            raise ValueError(f"training target {target!r} is not in the catalogue")
        b = index[target]
        for distance in range(1, min(window, len(history)) + 1):
            item = history[-distance]
            if item not in index:
                raise ValueError(f"history item {item!r} is not in the catalogue")
            a = index[item]
            if a != b:
                rows += [a, b]
                cols += [b, a]
                weights += [1.0 / distance] * 2
    n = len(item_ids)
    return sparse.csr_matrix((np.asarray(weights, dtype=np.float64), (rows, cols)), shape=(n, n))


def collaborative_item_embeddings(
    histories: Iterable[Sequence[Any]],
    targets: Iterable[Any],
    item_ids: Sequence[Any],
    dim: int = 64,
    window: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """One unit vector per item from the co-occurrences of the training rows (PPMI + truncated SVD).

    Positive pointwise mutual information of `cooccurrence_counts`, factorised as `U sqrt(S)` with its `dim` largest
    singular values, each row scaled to unit length. Items that co-occur with nothing (not in the training rows) get
    the zero vector: their codes then come from their text alone. Deterministic for a given `seed`.

    Args:
        histories, targets, item_ids, window: as in `cooccurrence_counts`. Pass the training rows only: vectors
            built from validation or test targets would leak them into the semantic IDs.
        dim (`int`, *optional*, defaults to 64): vector width; must be smaller than the number of items.
        seed (`int`, *optional*, defaults to 0): start vector of the SVD solver.

    Returns:
        `np.ndarray` float32 `[len(item_ids), dim]`.
    """
    from scipy import sparse
    from scipy.sparse.linalg import svds

    n = len(item_ids)
    if not 0 < dim < n:
        raise ValueError(f"dim must be in [1, {n - 1}] for {n} items, got {dim}")
    counts = cooccurrence_counts(histories, targets, item_ids, window=window).tocoo()
    if counts.nnz == 0:
        raise ValueError("the training rows hold no item pairs: no collaborative vectors can be built")
    item_totals = np.asarray(counts.sum(axis=1)).ravel()
    total = item_totals.sum()
    pmi = np.log(counts.data * total / (item_totals[counts.row] * item_totals[counts.col]))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=(n, n))
    v0 = np.random.default_rng(seed).standard_normal(n)
    u, s, _ = svds(ppmi, k=dim, v0=v0)
    order = np.argsort(-s)
    u, s = u[:, order], s[order]
    # a singular vector's sign is arbitrary: fix it so that its largest entry is positive
    signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(dim)])
    vectors = u * signs * np.sqrt(s)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0).astype(np.float32)


def combine_item_embeddings(text: np.ndarray, collaborative: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """`[text / |text|, weight * collaborative]` per item: the stage-1 input with both parts.

    Each text row is scaled to unit length, so with unit collaborative vectors `weight` is the ratio of the two
    parts' norms (the RQ-VAE's reconstruction loss weighs them by their squared norms).

    Raises:
        `ValueError`: when the two have different numbers of rows, or `weight < 0`.
    """
    text = np.asarray(text, dtype=np.float32)
    collaborative = np.asarray(collaborative, dtype=np.float32)
    if text.ndim != 2 or collaborative.ndim != 2 or text.shape[0] != collaborative.shape[0]:
        raise ValueError(
            f"text embeddings {list(text.shape)} and collaborative vectors {list(collaborative.shape)} must be "
            "[num_items, dim] with the same items"
        )
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    norms = np.linalg.norm(text, axis=1, keepdims=True)
    text = np.divide(text, norms, out=np.zeros_like(text), where=norms > 0)
    return np.concatenate([text, weight * collaborative], axis=1)
