"""Recall@K / NDCG@K against hand-computed values: hits, misses, ties, K beyond the list, semantic-ID ranks."""

import math

import numpy as np
import pytest

from hf_tiger.metrics import (
    compute_retrieval_metrics,
    load_evaluate_metric,
    metrics_from_ranks,
    ndcg_at_k,
    ranks_from_semantic_ids,
    recall_at_k,
)


def test_hand_computed_hits_and_misses():
    ranked = [[10, 20, 30, 40, 50, 60], [1, 2, 3], [7, 8, 9]]
    targets = [30, 3, 99]  # rank 2, rank 2, miss
    # Recall@2: nobody within the first two; Recall@3: two of three.
    assert recall_at_k(ranked, targets, k=2) == 0.0
    assert recall_at_k(ranked, targets, k=3) == pytest.approx(2 / 3)
    # NDCG@3: (1/log2(4) + 1/log2(4) + 0) / 3 = (0.5 + 0.5) / 3
    assert ndcg_at_k(ranked, targets, k=3) == pytest.approx(1 / 3)
    assert ndcg_at_k([[5]], [5], k=1) == 1.0
    assert ndcg_at_k([[4, 5]], [5], k=2) == pytest.approx(1 / math.log2(3))


def test_k_larger_than_returned_items():
    ranked = [[1, 2], [3]]
    targets = [2, 4]
    got = compute_retrieval_metrics(ranked, targets, ks=(1, 10))
    assert got["recall@1"] == 0.0
    assert got["recall@10"] == 0.5
    assert got["ndcg@10"] == pytest.approx(0.5 / math.log2(3))
    assert got["ndcg@1"] == 0.0


def test_empty_list_and_none_entries():
    # None is "no item": it keeps its slot (the target behind it is at rank 1) but never matches.
    got = compute_retrieval_metrics([[], [None, 4], [None, None]], [1, 4, None], ks=(1, 2))
    assert got["recall@1"] == 0.0
    assert got["recall@2"] == pytest.approx(1 / 3)
    assert got["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 3)


def test_ties_are_expected_value_over_random_order():
    # target 'b' ties with 'a' and 'c' at score 0.5 (positions 0..2), 'd' below.
    ranked = [["a", "b", "c", "d"]]
    scores = [[0.5, 0.5, 0.5, 0.1]]
    assert recall_at_k(ranked, ["b"], k=1, scores=scores) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, ["b"], k=2, scores=scores) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, ["b"], k=3, scores=scores) == pytest.approx(1.0)
    expected = (1 / math.log2(2) + 1 / math.log2(3)) / 3
    assert ndcg_at_k(ranked, ["b"], k=2, scores=scores) == pytest.approx(expected)
    # Without scores, the listed order decides.
    assert recall_at_k(ranked, ["b"], k=1) == 0.0
    assert recall_at_k(ranked, ["b"], k=2) == 1.0
    # A strictly better item in front and a tie behind: positions 1..2.
    got = compute_retrieval_metrics([["x", "t", "y"]], ["t"], ks=(2,), scores=[[0.9, 0.3, 0.3]])
    assert got["recall@2"] == pytest.approx(0.5)
    assert got["ndcg@2"] == pytest.approx(0.5 / math.log2(3))


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="more than once"):
        recall_at_k([[1, 2, 1]], [2], k=3)
    with pytest.raises(ValueError, match="2 ranked lists but 1 targets"):
        recall_at_k([[1], [2]], [2], k=3)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ndcg_at_k([[1]], [1], k=0)
    with pytest.raises(ValueError, match="scores"):
        recall_at_k([[1, 2]], [1], k=1, scores=[[0.1]])


def test_semantic_id_ranks_need_every_level():
    labels = np.array([[5, 9, 12, 20], [6, 9, 12, 20], [7, 8, 13, 21]])
    generated = np.array(
        [
            # first row shares 3 codes but differs in the collision level: not a hit; exact match at rank 1
            [[5, 9, 12, 21], [5, 9, 12, 20], [1, 1, 1, 1]],
            [[6, 9, 12, 20], [-100, -100, -100, -100], [-100, -100, -100, -100]],
            [[7, 8, 13, 20], [3, 3, 3, 3], [4, 4, 4, 4]],
        ]
    )
    ranks = ranks_from_semantic_ids(generated, labels)
    assert ranks.tolist() == [1, 0, -1]
    got = metrics_from_ranks(ranks, ks=(1, 5))
    assert got["recall@1"] == pytest.approx(1 / 3)
    assert got["recall@5"] == pytest.approx(2 / 3)
    assert got["ndcg@5"] == pytest.approx((1 / math.log2(3) + 1.0) / 3)
    # The list-based function agrees when items are semantic-ID tuples.
    lists = [[tuple(r) for r in g if r[0] >= 0] for g in generated]
    assert compute_retrieval_metrics(lists, [tuple(x) for x in labels], ks=(1, 5)) == pytest.approx(got)
    with pytest.raises(ValueError, match="levels"):
        ranks_from_semantic_ids(generated[:, :, :3], labels)


def test_rank_and_list_functions_agree_on_random_data():
    rng = np.random.default_rng(0)
    lists, targets, ranks = [], [], []
    for _ in range(200):
        items = rng.permutation(50)[: rng.integers(0, 20)].tolist()
        target = int(rng.integers(0, 50))
        lists.append(items)
        targets.append(target)
        ranks.append(items.index(target) if target in items else -1)
    assert compute_retrieval_metrics(lists, targets, ks=(1, 5, 10, 30)) == pytest.approx(
        metrics_from_ranks(ranks, ks=(1, 5, 10, 30))
    )


def test_evaluate_metric_loads_offline():
    metric = load_evaluate_metric()
    got = metric.compute(predictions=[[3, 1, 2], [5, 6]], references=[1, 7], ks=[2])
    assert got == pytest.approx({"recall@2": 0.5, "ndcg@2": 0.5 / math.log2(3)})
    got = metric.compute(predictions=[["B0A", "B0B"]], references=["B0B"], ks=[1, 2])
    assert got == pytest.approx({"recall@1": 0.0, "ndcg@1": 0.0, "recall@2": 1.0, "ndcg@2": 1 / math.log2(3)})
