"""Every metric against hand-computed values: hits, misses, ties, K beyond the list, empty lists, semantic-ID ranks,
catalogue coverage and popularity percentiles."""

import math

import numpy as np
import pytest

from hf_tiger.metrics import (
    catalogue_coverage,
    compute_recommendation_metrics,
    compute_retrieval_metrics,
    load_evaluate_metric,
    metrics_from_ranks,
    mrr_at_k,
    ndcg_at_k,
    popularity_percentile,
    popularity_percentiles,
    ranks_from_semantic_ids,
    recall_at_k,
    semantic_id_lists,
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
    assert got == pytest.approx({"recall@2": 0.5, "ndcg@2": 0.5 / math.log2(3), "mrr@2": 0.25})
    got = metric.compute(predictions=[["B0A", "B0B"]], references=["B0B"], ks=[1, 2])
    assert got == pytest.approx(
        {"recall@1": 0.0, "ndcg@1": 0.0, "mrr@1": 0.0, "recall@2": 1.0, "ndcg@2": 1 / math.log2(3), "mrr@2": 0.5}
    )


def test_mrr_by_hand_with_ties_and_empty_lists():
    ranked = [[10, 20, 30], [1, 2, 3], [7, 8, 9], []]
    targets = [30, 1, 99, 5]  # rank 2, rank 0, miss, empty list
    assert mrr_at_k(ranked, targets, k=3) == pytest.approx((1 / 3 + 1 + 0 + 0) / 4)
    assert mrr_at_k(ranked, targets, k=2) == pytest.approx(1 / 4)  # rank 2 is outside K = 2
    # 'b' ties with 'a' and 'c' (positions 0..2): the mean of 1/1, 1/2 (and 1/3 when K = 3) over 3 positions
    scores = [[0.5, 0.5, 0.5, 0.1]]
    assert mrr_at_k([["a", "b", "c", "d"]], ["b"], k=2, scores=scores) == pytest.approx((1 + 1 / 2) / 3)
    assert mrr_at_k([["a", "b", "c", "d"]], ["b"], k=3, scores=scores) == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    # None keeps its slot: the target behind it is at rank 1
    assert mrr_at_k([[None, 4]], [4], k=2) == pytest.approx(0.5)
    assert metrics_from_ranks([2, 0, -1, -1], ks=(3,))["mrr@3"] == pytest.approx((1 / 3 + 1) / 4)


def test_popularity_percentiles_by_hand():
    counts = {"a": 9, "b": 3, "c": 3, "d": 1}
    got = popularity_percentiles(counts, catalogue=["a", "b", "c", "d", "e"])
    # sorted counts 0 (e), 1 (d), 3 (b, c), 9 (a) over N - 1 = 4 gaps; b and c share positions 2 and 3
    assert got == pytest.approx({"e": 0.0, "d": 0.25, "b": 0.625, "c": 0.625, "a": 1.0})
    assert popularity_percentiles({"only": 4}) == {"only": 0.5}
    assert popularity_percentiles({"x": 2, "y": 2}) == {"x": 0.5, "y": 0.5}
    with pytest.raises(ValueError, match="not in the catalogue"):
        popularity_percentiles({"z": 1}, catalogue=["a"])
    with pytest.raises(ValueError, match="empty catalogue"):
        popularity_percentiles({}, catalogue=[])


def test_coverage_and_popularity_percentile_by_hand():
    ranked = [["a", "b", "c"], ["b", None, "d"], []]
    # K = 2: {a, b} and {b} (None is no item) -> 2 of a 5-item catalogue; the empty list adds nothing
    assert catalogue_coverage(ranked, k=2, catalogue_size=5) == pytest.approx(2 / 5)
    assert catalogue_coverage(ranked, k=3, catalogue_size=5) == pytest.approx(4 / 5)
    percentiles = {"a": 1.0, "b": 0.5, "c": 0.25, "d": 0.0, "e": 0.75}
    # K = 2 pools a, b, b; K = 3 pools a, b, c, b, d
    assert popularity_percentile(ranked, k=2, percentiles=percentiles) == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert popularity_percentile(ranked, k=3, percentiles=percentiles) == pytest.approx(2.25 / 5)
    assert math.isnan(popularity_percentile([[], [None]], k=2, percentiles=percentiles))
    with pytest.raises(ValueError, match="has no popularity"):
        popularity_percentile([["zz"]], k=1, percentiles=percentiles)
    with pytest.raises(ValueError, match="catalogue has only 1"):
        catalogue_coverage(ranked, k=3, catalogue_size=1)


def test_recommendation_metrics_combine_everything():
    ranked = [["a", "b"], ["c", "a"], []]
    targets = ["b", "c", "a"]
    percentiles = popularity_percentiles({"a": 5, "b": 2, "c": 1}, catalogue=["a", "b", "c", "d"])
    got = compute_recommendation_metrics(
        ranked, targets, ks=(1, 2), catalogue_size=4, percentiles=percentiles, seen=[True, False, True]
    )
    assert got["recall@1"] == pytest.approx(1 / 3) and got["recall@2"] == pytest.approx(2 / 3)
    assert got["mrr@2"] == pytest.approx((0.5 + 1) / 3)
    assert got["coverage@1"] == pytest.approx(2 / 4) and got["coverage@2"] == pytest.approx(3 / 4)
    # percentiles: d 0, c 1/3, b 2/3, a 1; K = 1 pools a, c; K = 2 pools a, b, c, a
    assert got["popularity_percentile@1"] == pytest.approx((1 + 1 / 3) / 2)
    assert got["popularity_percentile@2"] == pytest.approx((1 + 2 / 3 + 1 / 3 + 1) / 4)
    # seen rows 0 and 2: one hit at rank 1 (K = 2 only); the unseen row hits at rank 0
    assert got["seen_recall@1"] == 0.0 and got["seen_recall@2"] == pytest.approx(0.5)
    assert got["unseen_recall@1"] == 1.0 and got["seen_num_examples"] == 2 and got["unseen_num_examples"] == 1
    assert got["num_examples"] == 3
    # an empty group scores 0.0 and counts 0 rows
    none_seen = compute_recommendation_metrics(ranked, targets, ks=(2,), seen=[False] * 3)
    assert none_seen["seen_recall@2"] == 0.0 and none_seen["seen_num_examples"] == 0
    with pytest.raises(ValueError, match="2 seen flags but 3 targets"):
        compute_recommendation_metrics(ranked, targets, ks=(2,), seen=[True, False])


def test_semantic_id_lists_match_tuple_items():
    generated = np.array([[[1, 2, 3], [-100, -100, -100]], [[4, 5, 6], [1, 2, 3]], [[4, 5, 6], [0, 0, 0]]])
    assert semantic_id_lists(generated) == [[(1, 2, 3), None], [(4, 5, 6), (1, 2, 3)], [(4, 5, 6), (0, 0, 0)]]
    # rows outside the catalogue (pad_token_id filling) and repeats are padding
    assert semantic_id_lists(generated, catalogue={(1, 2, 3), (4, 5, 6)}) == [
        [(1, 2, 3), None],
        [(4, 5, 6), (1, 2, 3)],
        [(4, 5, 6), None],
    ]
    assert semantic_id_lists(np.array([[[7, 7], [0, 0], [0, 0]]])) == [[(7, 7), (0, 0), None]]
    with pytest.raises(ValueError, match="shape"):
        semantic_id_lists(np.zeros((2, 3)))
