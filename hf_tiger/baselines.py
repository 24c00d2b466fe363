"""Count-based reference recommenders, scored under exactly the protocol TIGER is scored under.

A published generative-retrieval number means little without the simple baselines beside it, measured on the same
splits with the same metric code. Two are provided:

- [`PopularityRecommender`]: the items most often seen as training targets, the same list for every user;
- [`LastItemTransitionRecommender`]: the items that most often followed the history's last item in the training
  rows (a first-order Markov chain fitted by counting), back-filled with the popular items.

A third, [`ItemNeighboursRecommender`], ranks the items nearest to the history's last item in an item-embedding space
(e.g. the item-text embeddings of stage 1): how far item similarity alone goes, without any sequence model.

Both fit on the `train` split of [`hf_tiger.data.load_sequences`] only (every prefix of `s[:-2]`), rank the whole
catalogue seen in training, and, like TIGER's constrained beam search, do not remove items already in the history.
[`evaluate_recommender`] scores a split with [`hf_tiger.metrics.compute_recommendation_metrics`], as TIGER is
scored; `cross_entropy` gives each baseline's held-out cross-entropy in nats per item, comparable with a TIGER
model's evaluation loss times its number of semantic-ID levels (the loss is a mean over the target's `num_levels`
tokens).
[`recall_by_seen_transition`] splits any model's Recall@K by whether the row's (last item -> target) pair occurs in
the training rows, which tells memorised transitions apart from generalisation; [`recall_by_transition_count`]
groups rows by how often that pair occurs (on training rows: how much of its training data a model has fitted).

Example:

```python
>>> from hf_tiger.baselines import LastItemTransitionRecommender, evaluate_recommender
>>> from hf_tiger.data import load_sequences
>>> splits = load_sequences("amazon-p5/beauty", data_dir="../shared/data")
>>> baseline = LastItemTransitionRecommender().fit(splits["train"])
>>> evaluate_recommender(baseline, splits["validation"])  # {"recall@5": ..., "ndcg@5": ..., ...}
```
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .metrics import compute_recommendation_metrics, popularity_percentiles

__all__ = [
    "ItemNeighboursRecommender",
    "LastItemTransitionRecommender",
    "PopularityRecommender",
    "baseline_metrics",
    "evaluate_recommender",
    "recall_by_seen_transition",
    "recall_by_transition_count",
    "seen_transitions",
    "seen_unseen_recall",
]


def _rows(split: Any) -> tuple[Sequence[Sequence[Hashable]], Sequence[Hashable]]:
    """`(histories, targets)` of a `load_sequences` split (a `datasets.Dataset` or a mapping of columns)."""
    names = getattr(split, "column_names", None) or list(split.keys())
    missing = [c for c in ("history", "target") if c not in names]
    if missing:
        raise ValueError(f"the split lacks the columns {missing} (has {names})")
    histories, targets = split["history"], split["target"]
    if len(histories) != len(targets):
        raise ValueError(f"{len(histories)} histories but {len(targets)} targets")
    return histories, targets


class PopularityRecommender:
    """Recommends the items most often seen as a training target, most frequent first, to every user.

    Ties are broken by first appearance in the training rows, so the ranking is deterministic.
    """

    def __init__(self):
        self.popularity: Counter = Counter()
        self._first_seen: dict[Hashable, int] = {}
        self._ranking: list[Hashable] = []

    @property
    def is_fitted(self) -> bool:
        return bool(self._ranking)

    def _count(self, histories: Sequence[Sequence[Hashable]], targets: Sequence[Hashable]) -> None:
        for history, target in zip(histories, targets):
            for item in (*history, target):
                self._first_seen.setdefault(item, len(self._first_seen))
            self.popularity[target] += 1

    def _order(self, items: Iterable[Hashable], counts: Mapping[Hashable, int]) -> list[Hashable]:
        return sorted(items, key=lambda item: (-counts[item], -self.popularity[item], self._first_seen[item]))

    def fit(self, train: Any) -> PopularityRecommender:
        """Count the training rows (`history`, `target` columns of a `load_sequences` split). Returns `self`."""
        histories, targets = _rows(train)
        if not len(targets):
            raise ValueError("cannot fit a recommender on an empty training split")
        self.popularity, self._first_seen = Counter(), {}
        self._count(histories, targets)
        self._ranking = self._order(self.popularity, self.popularity)
        self._after_fit(histories, targets)
        return self

    def _after_fit(self, histories, targets) -> None:
        pass

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(train_split) first")

    def _check(self, k: int) -> None:
        self._require_fitted()
        if int(k) < 1:
            raise ValueError(f"k must be a positive integer, got {k}")

    def recommend_one(self, history: Sequence[Hashable], k: int = 10) -> list[Hashable]:
        """The top `k` items for one history (item ids, oldest first)."""
        self._check(k)
        return self._ranking[:k]

    def _fill_with_popular(self, ranked: list[Hashable], k: int) -> list[Hashable]:
        """`ranked` filled up to `k` items with the most popular items not already in it (in place; returned)."""
        if len(ranked) < k:
            listed = set(ranked)
            for item in self._ranking:
                if item not in listed:
                    ranked.append(item)
                    if len(ranked) == k:
                        break
        return ranked

    def _catalogue_size(self, targets: Sequence[Hashable], num_items: int | None) -> int:
        known = set(self._first_seen).union(targets)
        if num_items is None:
            return len(known)
        if int(num_items) < len(known):
            raise ValueError(
                f"num_items={num_items} is smaller than the {len(known)} distinct items of the training rows and "
                "the scored targets"
            )
        return int(num_items)

    def _popularity_probability(self, item: Hashable, smoothing: float, num_items: int) -> float:
        total = self.popularity.total()
        return (self.popularity[item] + smoothing) / (total + smoothing * num_items)

    def _probability(
        self, history: Sequence[Hashable], target: Hashable, smoothing: float, num_items: int
    ) -> float:
        return self._popularity_probability(target, smoothing, num_items)

    def cross_entropy(
        self, split: Any, num_items: int | None = None, smoothing: float = 1.0, **kwargs: float
    ) -> float:
        """Held-out cross-entropy, in nats per item, of the recommender's next-item distribution on a split.

        The popularity distribution is add-`smoothing` (Laplace) over a catalogue of `num_items` items, so every
        item, also one never seen in training, has a non-zero probability. A TIGER model's evaluation loss is a
        mean over the `num_levels` tokens of the target's semantic ID, so `eval_loss * num_levels` is the same
        quantity for TIGER (an upper bound, since TIGER may put some mass on token sequences that are no item).

        Args:
            split: a `load_sequences` split (columns `history`, `target`); score it on rows never fitted on.
            num_items (`int`, *optional*): catalogue size; defaults to the distinct items of the training rows
                and of the split's targets.
            smoothing (`float`, *optional*, defaults to 1.0): pseudo-count added to every item's popularity.
            kwargs: model-specific settings (`interpolation` for [`LastItemTransitionRecommender`]).
        """
        self._require_fitted()
        if smoothing <= 0:
            raise ValueError(
                f"smoothing must be positive (every item needs a non-zero probability), got {smoothing}"
            )
        histories, targets = _rows(split)
        if not len(targets):
            raise ValueError("cannot compute a cross-entropy on an empty split")
        size = self._catalogue_size(targets, num_items)
        total = 0.0
        for history, target in zip(histories, targets):
            total -= math.log(self._probability(history, target, smoothing, size, **kwargs))
        return total / len(targets)

    def recommend(self, histories: Iterable[Sequence[Hashable]], k: int = 10) -> list[list[Hashable]]:
        """The top `k` items for each history, best first."""
        return [self.recommend_one(history, k) for history in histories]


class LastItemTransitionRecommender(PopularityRecommender):
    """Ranks the items that followed the history's last item in the training rows, by how often they did.

    Fitted on the `(history[-1], target)` pairs of the training split: with the leave-one-out protocol these are
    exactly the consecutive pairs of every user's `s[:-2]`. Successors are ordered by count, then by popularity;
    a list shorter than `k` (or a last item never seen as a source) is filled up with the most popular items not
    already listed.
    """

    def __init__(self):
        super().__init__()
        self.transitions: dict[Hashable, Counter] = {}
        self._successors: dict[Hashable, list[Hashable]] = {}

    def _after_fit(self, histories, targets) -> None:
        transitions: dict[Hashable, Counter] = defaultdict(Counter)
        for history, target in zip(histories, targets):
            if len(history):
                transitions[history[-1]][target] += 1
        self.transitions = dict(transitions)
        self._successors = {item: self._order(counts, counts) for item, counts in self.transitions.items()}

    def conditional_entropy(self) -> float:
        """Empirical entropy, in nats, of the training target given the history's last item (training rows).

        This is an in-sample figure: the fitted table memorises every transition seen once (0 nats for it), so
        it is far below what the table reaches on held-out rows and must not be compared with a model's held-out
        loss. Use [`~LastItemTransitionRecommender.cross_entropy`] for that.
        """
        self._require_fitted()
        total, entropy = 0, 0.0
        for counts in self.transitions.values():
            source_total = sum(counts.values())
            total += source_total
            entropy -= sum(n * math.log(n / source_total) for n in counts.values())
        return entropy / total if total else 0.0

    def cross_entropy(
        self, split: Any, num_items: int | None = None, smoothing: float = 1.0, interpolation: float = 0.5
    ) -> float:
        """Held-out cross-entropy (nats per item) of the counts interpolated with popularity.

        `P(target) = interpolation * P_counts(target | last item) + (1 - interpolation) * P_popularity(target)`;
        a history whose last item never preceded anything in training gets the popularity term alone. See
        [`PopularityRecommender.cross_entropy`] for the other arguments.
        """
        if not 0.0 <= interpolation < 1.0:
            raise ValueError(
                f"interpolation must be in [0, 1) (1 gives unseen successors probability 0), got {interpolation}"
            )
        return super().cross_entropy(split, num_items=num_items, smoothing=smoothing, interpolation=interpolation)

    def _probability(
        self, history: Sequence[Hashable], target: Hashable, smoothing: float, num_items: int, interpolation: float
    ) -> float:
        popular = self._popularity_probability(target, smoothing, num_items)
        counts = self.transitions.get(history[-1]) if len(history) else None
        if not counts:
            return popular
        return interpolation * counts[target] / counts.total() + (1.0 - interpolation) * popular

    def recommend_one(self, history: Sequence[Hashable], k: int = 10) -> list[Hashable]:
        self._check(k)
        ranked = list(self._successors.get(history[-1], ())[:k]) if len(history) else []
        return self._fill_with_popular(ranked, k)


class ItemNeighboursRecommender(PopularityRecommender):
    """Ranks items by cosine similarity to the history's last item in a given item-embedding space.

    The last item itself is left out; equal similarities within the top `k` keep catalogue order. A history whose last item has no
    embedding (or a zero one, such as an item without training pairs in collaborative vectors) gets the popular
    items, as do the slots left when fewer than `k` other items are embedded. `fit` counts the training targets for
    that fallback only.

    Args:
        embeddings (array of shape `(len(item_ids), dim)`): one vector per item.
        item_ids (`Sequence`): the items, in the rows' order (unique).
    """

    def __init__(self, embeddings: Any, item_ids: Sequence[Hashable]):
        super().__init__()
        vectors = np.asarray(embeddings, dtype=np.float32)
        item_ids = list(item_ids)
        if vectors.ndim != 2 or vectors.shape[0] != len(item_ids):
            raise ValueError(f"embeddings must be [num_items={len(item_ids)}, dim], got {list(vectors.shape)}")
        self.item_ids = item_ids
        self._index = {item: row for row, item in enumerate(item_ids)}
        if len(self._index) != len(item_ids):
            raise ValueError("item_ids must be unique")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self._unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        self._embedded = norms.ravel() > 0

    def cross_entropy(self, *args, **kwargs) -> float:
        raise NotImplementedError("ItemNeighboursRecommender ranks items; it defines no probability to score")

    def recommend_one(self, history: Sequence[Hashable], k: int = 10) -> list[Hashable]:
        return self.recommend([history], k=k)[0]

    def recommend(
        self, histories: Iterable[Sequence[Hashable]], k: int = 10, batch_size: int = 1024
    ) -> list[list[Hashable]]:
        self._check(k)
        k = int(k)
        histories = list(histories)
        rows = [self._index.get(history[-1], -1) if len(history) else -1 for history in histories]
        ranked: list[list[Hashable]] = [[] for _ in histories]
        usable = [i for i, row in enumerate(rows) if row >= 0 and self._embedded[row]]
        take = min(k, len(self.item_ids) - 1)  # every item but the last one itself
        for start in range(0, len(usable) if take > 0 else 0, batch_size):
            chunk = usable[start : start + batch_size]
            sources = np.asarray([rows[i] for i in chunk])
            similarity = self._unit[sources] @ self._unit.T
            similarity[:, ~self._embedded] = -np.inf
            similarity[np.arange(len(chunk)), sources] = -np.inf
            top = np.argpartition(-similarity, take - 1, axis=1)[:, :take]
            for position, i in enumerate(chunk):
                candidates = top[position]
                scores = similarity[position, candidates]
                order = np.lexsort((candidates, -scores))  # by similarity, then catalogue order
                ranked[i] = [
                    self.item_ids[c] for c in candidates[order] if np.isfinite(similarity[position, c])
                ]
        return [self._fill_with_popular(items, k) for items in ranked]


def evaluate_recommender(
    recommender: PopularityRecommender,
    split: Any,
    ks: Sequence[int] = (5, 10),
    transitions: LastItemTransitionRecommender | None = None,
    catalogue: Sequence[Hashable] | None = None,
    popularity: Mapping[Hashable, int] | None = None,
) -> dict[str, float]:
    """Every retrieval metric of a fitted recommender on a `load_sequences` split (one target per row).

    Scored by [`hf_tiger.metrics.compute_recommendation_metrics`], the function that scores TIGER.

    Args:
        transitions ([`LastItemTransitionRecommender`], *optional*): fitted on the training split; adds
            [`seen_unseen_recall`] (Recall@K on rows whose last-item -> target pair occurs in training and on the
            rest).
        catalogue (`Sequence`, *optional*): every recommendable item (e.g. `tokenizer.item_ids`); adds
            `coverage@K`. Use the same catalogue for every recommender compared.
        popularity (`Mapping`, *optional*): training counts per item (defaults to the recommender's own target
            counts); with `catalogue`, adds `popularity_percentile@K`.

    Returns:
        `dict[str, float]` with `recall@K`, `ndcg@K`, `mrr@K` (+ `coverage@K`, `popularity_percentile@K`,
        `seen_recall@K`, `unseen_recall@K`) for every K in `ks`, and `num_examples`.
    """
    histories, targets = _rows(split)
    ranked = recommender.recommend(histories, k=max(int(k) for k in ks))
    percentiles = None
    if catalogue is not None:
        percentiles = popularity_percentiles(recommender.popularity if popularity is None else popularity, catalogue)
    return compute_recommendation_metrics(
        ranked,
        targets,
        ks=ks,
        catalogue_size=None if catalogue is None else len(set(catalogue)),
        percentiles=percentiles,
        seen=None if transitions is None else seen_transitions(split, transitions),
    )


def seen_transitions(split: Any, transitions: LastItemTransitionRecommender) -> list[bool]:
    """Per row of a `load_sequences` split: does its (last history item -> target) pair occur in training?"""
    transitions._require_fitted()
    histories, targets = _rows(split)
    return [
        bool(len(history)) and transitions.transitions.get(history[-1], {}).get(target, 0) > 0
        for history, target in zip(histories, targets)
    ]


def seen_unseen_recall(ranks: Sequence[int], seen: Sequence[bool], ks: Sequence[int] = (10,)) -> dict[str, float]:
    """Recall@K on the "seen" rows (their transition occurs in training) and on the "unseen" rest.

    Args:
        ranks (`Sequence[int]`): 0-based rank of each row's target, -1 when not retrieved.
        seen (`Sequence[bool]`): per row, whether its transition is seen (see [`seen_transitions`]).
        ks (`Sequence[int]`, *optional*, defaults to `(10,)`): cut-offs.

    Returns:
        `dict` with `seen_recall@K` and `unseen_recall@K` for every K (0.0 for an empty group), and
        `seen_num_examples` / `unseen_num_examples`.
    """
    ranks = np.asarray(ranks, dtype=np.int64).reshape(-1)
    seen = np.asarray(seen, dtype=bool).reshape(-1)
    if ranks.shape != seen.shape:
        raise ValueError(f"{ranks.size} ranks but {seen.size} seen flags")
    out: dict[str, float] = {}
    for name, rows in (("seen", seen), ("unseen", ~seen)):
        for k in ks:
            hit = (ranks[rows] >= 0) & (ranks[rows] < int(k))
            out[f"{name}_recall@{k}"] = float(hit.mean()) if rows.any() else 0.0
        out[f"{name}_num_examples"] = int(rows.sum())
    return out


def baseline_metrics(
    splits: Mapping[str, Any],
    split: str = "test",
    ks: Sequence[int] = (5, 10),
    limit: int | None = None,
    catalogue: Sequence[Hashable] | None = None,
) -> dict[str, dict[str, float]]:
    """Both baselines fitted on `splits["train"]` and scored on `splits[split]` (its first `limit` rows).

    Args:
        catalogue (`Sequence`, *optional*): every recommendable item (pass `tokenizer.item_ids` to compare with
            TIGER); defaults to the items of the training rows and the scored split.

    Returns:
        `dict` mapping `"most_popular"` and `"last_item_transitions"` to their metrics (see [`evaluate_recommender`]).
    """
    scored = splits[split]
    if limit is not None and limit < len(scored):
        scored = (
            scored.select(range(limit))
            if hasattr(scored, "select")
            else {k: v[:limit] for k, v in scored.items()}
        )
    if catalogue is None:
        catalogue = list(
            dict.fromkeys(
                item
                for part in (splits["train"], scored)
                for history, target in zip(*_rows(part))
                for item in (*history, target)
            )
        )
    popular = PopularityRecommender().fit(splits["train"])
    transitions = LastItemTransitionRecommender().fit(splits["train"])
    common = {"ks": ks, "transitions": transitions, "catalogue": catalogue, "popularity": popular.popularity}
    return {
        "most_popular": evaluate_recommender(popular, scored, **common),
        "last_item_transitions": evaluate_recommender(transitions, scored, **common),
    }


def _bin_name(edges: Sequence[int], index: int) -> str:
    low = edges[index]
    if index + 1 == len(edges):
        return f"{low}+"
    high = edges[index + 1] - 1
    return str(low) if high == low else f"{low}-{high}"


def recall_by_transition_count(
    ranked_item_lists: Sequence[Sequence[Hashable]],
    split: Any,
    transitions: LastItemTransitionRecommender,
    k: int = 10,
    bins: Sequence[int] = (0, 1, 2, 3, 6),
) -> dict[str, dict[str, float]]:
    """Recall@`k` of any model's rankings, grouped by how often each row's transition occurs in training.

    A row's transition is the pair (last history item, target); its count is how often `transitions` saw it in
    the rows it was fitted on (0 for an empty history). Scored on training rows, this shows how much of its own
    training data a model has fitted; scored on held-out rows, how much it relies on memorised transitions.

    Args:
        ranked_item_lists (`Sequence[Sequence[Hashable]]`): per row of `split`, the model's items, best first.
        split: the `load_sequences` split the rankings are for (columns `history`, `target`).
        transitions ([`LastItemTransitionRecommender`]): fitted on the training split.
        k (`int`, *optional*, defaults to 10): the cut-off.
        bins (`Sequence[int]`, *optional*, defaults to `(0, 1, 2, 3, 6)`): increasing lower edges of the count
            groups, the first 0; the defaults give the groups `"0"`, `"1"`, `"2"`, `"3-5"` and `"6+"`.

    Returns:
        `dict` mapping each group's name to `{"num_examples": n, "recall@k": r}` (`r` is 0.0 when `n` is 0).
    """
    transitions._check(k)
    edges = [int(edge) for edge in bins]
    if not edges or edges[0] != 0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"bins must be increasing lower edges starting at 0, got {list(bins)}")
    histories, targets = _rows(split)
    if len(ranked_item_lists) != len(targets):
        raise ValueError(f"{len(ranked_item_lists)} ranked lists for a split of {len(targets)} rows")
    groups = [[0, 0] for _ in edges]  # rows, hits
    for ranked, history, target in zip(ranked_item_lists, histories, targets):
        count = transitions.transitions.get(history[-1], {}).get(target, 0) if len(history) else 0
        group = groups[bisect.bisect_right(edges, count) - 1]
        group[0] += 1
        group[1] += target in list(ranked)[:k]
    return {
        _bin_name(edges, index): {"num_examples": rows, f"recall@{k}": hits / rows if rows else 0.0}
        for index, (rows, hits) in enumerate(groups)
    }


def recall_by_seen_transition(
    ranked_item_lists: Sequence[Sequence[Hashable]],
    split: Any,
    transitions: LastItemTransitionRecommender,
    k: int = 10,
) -> dict[str, dict[str, float]]:
    """Recall@`k` of any model's rankings, split by whether each row's transition was seen in training.

    A row's transition is the pair (last history item, target). "seen" rows are those whose pair occurs in the
    rows `transitions` was fitted on; a count model can only hit those, while a model that generalises also
    hits "unseen" rows. Comparing a model's two figures with the count model's shows which part it is missing.
    (The two groups of [`recall_by_transition_count`] with `bins=(0, 1)`.)

    Args:
        ranked_item_lists (`Sequence[Sequence[Hashable]]`): per row of `split`, the model's items, best first.
        split: the `load_sequences` split the rankings are for (columns `history`, `target`).
        transitions ([`LastItemTransitionRecommender`]): fitted on the training split.
        k (`int`, *optional*, defaults to 10): the cut-off.

    Returns:
        `dict` with `"seen"` and `"unseen"`, each `{"num_examples": n, "recall@k": r}` (`r` is 0.0 when `n` is 0).
    """
    groups = recall_by_transition_count(ranked_item_lists, split, transitions, k=k, bins=(0, 1))
    return {"seen": groups["1+"], "unseen": groups["0"]}
