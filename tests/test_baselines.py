"""Count-based baselines (hf_tiger.baselines) and their benchmark script, on hand-made rows and on ML-100K."""

import json
import math
from collections import Counter

import numpy as np
import pytest
from hub_helpers import load_script, tiny_ml100k_tiger

from hf_tiger.baselines import (
    ItemNeighboursRecommender,
    LastItemTransitionRecommender,
    PopularityRecommender,
    evaluate_recommender,
    recall_by_seen_transition,
    recall_by_transition_count,
)
from hf_tiger.data import load_sequences

# Training rows as load_sequences writes them: every prefix of s[:-2] predicts its next item.
TRAIN = {
    "user_id": [1, 1, 2, 2, 3, 3],
    "history": [["a"], ["a", "b"], ["a"], ["a", "c"], ["d"], ["d", "b"]],
    "target": ["b", "c", "c", "b", "b", "e"],
}


def test_popularity_orders_by_target_count_then_first_appearance():
    model = PopularityRecommender().fit(TRAIN)
    # b: 3 times, c: 2, e: 1; "a" and "d" never are targets and are not recommended.
    assert model.recommend_one(["x"], k=10) == ["b", "c", "e"]
    assert model.recommend([["a"], ["d", "e"]], k=2) == [["b", "c"], ["b", "c"]]
    tie = PopularityRecommender().fit({"history": [["a"], ["a"]], "target": ["z", "y"]})
    assert tie.recommend_one(["a"], k=2) == ["z", "y"]  # equal counts: first seen first


def test_transitions_rank_successors_then_fill_with_popular_items():
    model = LastItemTransitionRecommender().fit(TRAIN)
    assert {k: dict(v) for k, v in model.transitions.items()} == {
        "a": {"b": 1, "c": 1},
        "b": {"c": 1, "e": 1},
        "c": {"b": 1},
        "d": {"b": 1},
    }
    # a -> b and a -> c once each: the more popular b first; then popular items not yet listed.
    assert model.recommend_one(["d", "a"], k=3) == ["b", "c", "e"]
    assert model.recommend_one(["a", "b"], k=1) == ["c"]  # b -> c and b -> e once each: c is more popular
    assert model.recommend_one(["c"], k=3) == ["b", "c", "e"]  # c -> b, then popularity without repeating b
    assert model.recommend_one(["unseen"], k=2) == ["b", "c"]  # unknown last item: popularity
    assert model.recommend_one([], k=2) == ["b", "c"]
    # a, b: two successors once each (log 2 nats for each of their 2 rows); c, d: one successor (0 nats).
    assert model.conditional_entropy() == pytest.approx(4 * math.log(2) / 6)
    for ranked in model.recommend([["a"], ["b"], ["c"], ["d"], ["q"]], k=3):
        assert len(ranked) == len(set(ranked)) == 3


def test_cross_entropy_matches_hand_computation():
    split = {"history": [["a"], ["q"]], "target": ["c", "z"]}
    # Catalogue: a, b, c, d, e from training plus the unseen target z = 6 items; 6 training targets (b 3, c 2, e 1).
    p_c, p_z = (2 + 1) / (6 + 6), (0 + 1) / (6 + 6)
    popular = PopularityRecommender().fit(TRAIN)
    assert popular.cross_entropy(split) == pytest.approx(-(math.log(p_c) + math.log(p_z)) / 2)
    # A 20-item catalogue and a pseudo-count of 0.5 change only the popularity term.
    assert popular.cross_entropy(split, num_items=20, smoothing=0.5) == pytest.approx(
        -(math.log(2.5 / 16) + math.log(0.5 / 16)) / 2
    )
    transitions = LastItemTransitionRecommender().fit(TRAIN)
    # a -> {b: 1, c: 1}: 0.3 * 1/2 + 0.7 * p_c; q never preceded anything: popularity alone.
    assert transitions.cross_entropy(split, interpolation=0.3) == pytest.approx(
        -(math.log(0.3 * 0.5 + 0.7 * p_c) + math.log(p_z)) / 2
    )
    assert transitions.cross_entropy(split, interpolation=0.0) == pytest.approx(popular.cross_entropy(split))
    # The in-sample entropy is far below what the same table reaches on rows it was not fitted on.
    held_out = {"history": [["a"], ["b"], ["c"], ["d"]], "target": ["e", "b", "c", "e"]}
    assert transitions.conditional_entropy() < transitions.cross_entropy(held_out, interpolation=0.5)


def test_cross_entropy_bad_settings_are_clear_errors():
    model = LastItemTransitionRecommender().fit(TRAIN)
    split = {"history": [["a"]], "target": ["b"]}
    with pytest.raises(ValueError, match="smoothing must be positive"):
        model.cross_entropy(split, smoothing=0)
    with pytest.raises(ValueError, match=r"interpolation must be in \[0, 1\)"):
        model.cross_entropy(split, interpolation=1.0)
    with pytest.raises(ValueError, match="num_items=3 is smaller than the 5 distinct items"):
        model.cross_entropy(split, num_items=3)
    with pytest.raises(ValueError, match="empty split"):
        model.cross_entropy({"history": [], "target": []})
    with pytest.raises(RuntimeError, match="not fitted"):
        PopularityRecommender().cross_entropy(split)


def test_recall_by_seen_transition_matches_hand_computation():
    model = LastItemTransitionRecommender().fit(TRAIN)
    # a -> c and d -> b occur in TRAIN ("seen"); q -> z and an empty history do not.
    split = {"history": [["a"], ["q"], ["x", "d"], []], "target": ["c", "z", "b", "b"]}
    ranked = [["c", "b"], ["z"], ["e", "b"], ["b"]]
    assert recall_by_seen_transition(ranked, split, model, k=1) == {
        "seen": {"num_examples": 2, "recall@1": 0.5},  # c at rank 1; b only at rank 2
        "unseen": {"num_examples": 2, "recall@1": 1.0},
    }
    assert recall_by_seen_transition(ranked, split, model, k=2)["seen"]["recall@2"] == 1.0
    only_seen = recall_by_seen_transition([["c"]], {"history": [["a"]], "target": ["c"]}, model)
    assert only_seen["unseen"] == {"num_examples": 0, "recall@10": 0.0}
    with pytest.raises(ValueError, match="3 ranked lists for a split of 4 rows"):
        recall_by_seen_transition(ranked[:3], split, model)
    with pytest.raises(RuntimeError, match="not fitted"):
        recall_by_seen_transition(ranked, split, LastItemTransitionRecommender())


def test_recall_by_transition_count_matches_hand_computation():
    model = LastItemTransitionRecommender().fit(
        {"history": [["a"], ["a"], ["a"], ["a"], ["b"]], "target": ["b", "b", "b", "c", "c"]}
    )
    # pair counts: a -> b 3, a -> c 1, b -> c 1; q -> b and an empty history count 0.
    split = {"history": [["a"], ["a"], ["b"], ["q"], []], "target": ["b", "c", "c", "b", "c"]}
    ranked = [["b"], ["b"], ["c"], ["b"], ["x"]]
    assert recall_by_transition_count(ranked, split, model, k=1) == {
        "0": {"num_examples": 2, "recall@1": 0.5},
        "1": {"num_examples": 2, "recall@1": 0.5},
        "2": {"num_examples": 0, "recall@1": 0.0},
        "3-5": {"num_examples": 1, "recall@1": 1.0},
        "6+": {"num_examples": 0, "recall@1": 0.0},
    }
    assert recall_by_transition_count(ranked, split, model, k=1, bins=(0, 3)) == {
        "0-2": {"num_examples": 4, "recall@1": 0.5},
        "3+": {"num_examples": 1, "recall@1": 1.0},
    }
    for bad in ((1, 2), (0, 2, 2), ()):
        with pytest.raises(ValueError, match="increasing lower edges starting at 0"):
            recall_by_transition_count(ranked, split, model, bins=bad)


def test_evaluate_matches_hand_computation():
    model = LastItemTransitionRecommender().fit(TRAIN)
    split = {"history": [["a"], ["c"], ["d"], ["b"]], "target": ["c", "c", "z", "e"]}
    # rankings: a -> [b, c, e]: c at rank 1; c -> [b, c, e]: rank 1; d -> [b, c, e]: z missing; b -> [c, e, b]: rank 1
    metrics = evaluate_recommender(model, split, ks=(1, 5))
    assert metrics["num_examples"] == 4
    assert metrics["recall@1"] == 0.0
    assert metrics["recall@5"] == pytest.approx(3 / 4)
    assert metrics["ndcg@5"] == pytest.approx(3 / 4 / math.log2(3))


def test_bad_use_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not fitted"):
        LastItemTransitionRecommender().recommend_one(["a"])
    with pytest.raises(ValueError, match="lacks the columns"):
        PopularityRecommender().fit({"history": [["a"]]})
    with pytest.raises(ValueError, match="empty training split"):
        PopularityRecommender().fit({"history": [], "target": []})
    with pytest.raises(ValueError, match="positive integer"):
        PopularityRecommender().fit(TRAIN).recommend_one(["a"], k=0)


def test_transitions_are_the_consecutive_pairs_of_the_training_prefixes(shared_data_dir):
    """On ML-100K the fitted pairs are exactly the consecutive pairs of every user's s[:-2]: no validation pair."""
    splits = load_sequences("ml-100k", data_dir=shared_data_dir, max_history=10_000)
    model = LastItemTransitionRecommender().fit(splits["train"])
    expected = Counter()
    for history in splits["validation"]["history"]:  # the validation history of a user is its whole s[:-2]
        expected.update(zip(history, history[1:]))
    fitted = Counter({(a, b): n for a, counts in model.transitions.items() for b, n in counts.items()})
    assert fitted == expected
    assert fitted.total() == splits["train"].num_rows
    metrics = evaluate_recommender(model, splits["validation"])
    popular = evaluate_recommender(PopularityRecommender().fit(splits["train"]), splits["validation"])
    assert set(metrics) == set(popular) == {
        f"{name}@{k}" for name in ("recall", "ndcg", "mrr") for k in (5, 10)
    } | {"num_examples"}
    assert metrics["num_examples"] == 943


def test_benchmark_scores_a_saved_tiger_model_with_the_transition_breakdown(
    shared_data_dir, tmp_path, capsys, monkeypatch
):
    script = load_script("benchmarks/baselines.py", monkeypatch)
    folder = tiny_ml100k_tiger(tmp_path / "tiger")
    rows = script.main(
        ["--data_dir", str(shared_data_dir), "--dataset", "ml-100k", "--tiger_models", str(folder)]
        + ["--train_sample", "300"]
    )
    printed = capsys.readouterr().out
    chain, tiger = rows[1], rows[2]
    assert tiger["model"].startswith("TIGER (") and "scored here" in tiger["model"]
    splits = load_sequences("ml-100k", data_dir=shared_data_dir)
    refit = LastItemTransitionRecommender().fit(splits["train"])
    for split in ("validation", "test"):
        parts = tiger["by_transition"][split]
        assert parts["seen"]["num_examples"] + parts["unseen"]["num_examples"] == 943
        # The breakdown re-adds to the model's overall Recall@10, scored on the same rankings.
        overall = sum(p["num_examples"] * p["recall@10"] for p in parts.values()) / 943
        assert overall == pytest.approx(tiger[split]["recall@10"])
        assert tiger[split]["num_examples"] == 943
        # Same rows split the same way for the chain; the chain's figures are its evaluate_recommender ones.
        assert chain["by_transition"][split]["seen"]["num_examples"] == parts["seen"]["num_examples"]
        chain_overall = sum(
            p["num_examples"] * p["recall@10"] for p in chain["by_transition"][split].values()
        )
        assert chain_overall / 943 == pytest.approx(evaluate_recommender(refit, splits[split])["recall@10"])
    assert "| seen: rows | seen: R@10 |" in printed and f"| {tiger['model']} | test |" in printed
    # The fit table: the same 300 training rows for both; a training row's own pair always occurs in training.
    for row in (chain, tiger):
        fit = row["training_fit"]
        assert fit["num_examples"] == 300 and fit["by_count"]["0"]["num_examples"] == 0
        assert sum(g["num_examples"] for g in fit["by_count"].values()) == 300
        overall = sum(g["num_examples"] * g["recall@10"] for g in fit["by_count"].values()) / 300
        assert overall == pytest.approx(fit["recall@10"])
    assert chain["training_fit"]["by_count"].keys() == tiger["training_fit"]["by_count"].keys()
    assert [g["num_examples"] for g in chain["training_fit"]["by_count"].values()] == [
        g["num_examples"] for g in tiger["training_fit"]["by_count"].values()
    ]
    assert "Recall@10 on 300 training rows (in-sample)" in printed and "| pair seen 3-5x |" in printed


def test_benchmark_script_prints_the_table_with_tiger_rows(shared_data_dir, tmp_path, capsys, monkeypatch):
    script = load_script("benchmarks/baselines.py", monkeypatch)
    results = {
        "config": {"model": {"num_levels": 4}},
        "test": {
            "recall@5": 0.01,
            "recall@10": 0.02,
            "ndcg@5": 0.005,
            "ndcg@10": 0.007,
            "loss": 1.75,
            "num_examples": 943,
        },
        "best_validation": {"metric": "recall@10", "value": 0.03, "step": 20},
        "validation_history": [
            {
                "step": 10,
                "eval_recall@5": 0.0,
                "eval_recall@10": 0.01,
                "eval_ndcg@5": 0.0,
                "eval_ndcg@10": 0.004,
            },
            {
                "step": 20,
                "eval_recall@5": 0.02,
                "eval_recall@10": 0.03,
                "eval_ndcg@5": 0.01,
                "eval_ndcg@10": 0.012,
                "eval_loss": 1.5,
            },
        ],
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    out_file = tmp_path / "rows.json"
    rows = script.main(
        [
            "--data_dir",
            str(shared_data_dir),
            "--dataset",
            "ml-100k",
            "--tiger_results",
            str(tmp_path / "results.json"),
            "--output_file",
            str(out_file),
        ]
    )
    printed = capsys.readouterr().out
    assert [r["model"].split(" (")[0] for r in rows] == ["most popular", "last-item transitions", "TIGER"]
    assert rows[2]["validation"]["recall@10"] == 0.03  # the selected (best) validation evaluation
    assert "| TIGER (" in printed and "| 0.0300 |" in printed and "| 0.0200 |" in printed
    written = json.loads(out_file.read_text())["rows"]
    assert written[1]["test"]["num_examples"] == 943
    # Held-out nats per item: TIGER's mean token loss times its 4 levels (validation: the selected evaluation).
    assert rows[2]["cross_entropy"] == {"validation": 6.0, "test": 7.0}
    assert "| 6.000 | 7.000 |" in printed
    splits = load_sequences("ml-100k", data_dir=shared_data_dir)
    transitions = rows[1]["cross_entropy"]
    refit = LastItemTransitionRecommender().fit(splits["train"])
    assert transitions["interpolation"] in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert transitions["validation"] == pytest.approx(
        refit.cross_entropy(splits["validation"], interpolation=transitions["interpolation"])
    )
    # The weight is the one with the lowest validation cross-entropy.
    for weight in (0.1, 0.5, 0.9):
        assert (
            transitions["validation"]
            <= refit.cross_entropy(splits["validation"], interpolation=weight) + 1e-12
        )
    assert rows[0]["cross_entropy"]["test"] > 0


def test_seen_unseen_recall_by_hand():
    from hf_tiger.baselines import seen_unseen_recall

    ranks = [0, 4, -1, 12, 2]
    seen = [True, True, False, False, False]
    got = seen_unseen_recall(ranks, seen, ks=(1, 5))
    assert got == {
        "seen_recall@1": 0.5, "seen_recall@5": 1.0, "seen_num_examples": 2,
        "unseen_recall@1": 0.0, "unseen_recall@5": 1 / 3, "unseen_num_examples": 3,
    }
    # an empty group scores 0.0, not NaN
    empty = seen_unseen_recall([3, -1], [False, False], ks=(10,))
    assert empty["seen_recall@10"] == 0.0 and empty["seen_num_examples"] == 0 and empty["unseen_recall@10"] == 0.5
    with pytest.raises(ValueError, match="3 ranks but 2 seen flags"):
        seen_unseen_recall([1, 2, 3], [True, False])


def test_evaluate_recommender_adds_the_seen_unseen_split():
    from hf_tiger.baselines import LastItemTransitionRecommender, evaluate_recommender, seen_transitions

    train = {"history": [[1], [1], [2], [3]], "target": [2, 2, 3, 1]}
    held_out = {"history": [[1], [2], [3, 4], [2]], "target": [2, 1, 5, 3]}
    transitions = LastItemTransitionRecommender().fit(train)
    assert seen_transitions(held_out, transitions) == [True, False, False, True]
    got = evaluate_recommender(transitions, held_out, ks=(1,), transitions=transitions)
    assert got["seen_recall@1"] == 1.0 and got["unseen_recall@1"] == 0.0
    assert got["seen_num_examples"] == 2 and got["recall@1"] == 0.5


def test_evaluate_recommender_beyond_accuracy_metrics_by_hand():
    from hf_tiger.baselines import baseline_metrics

    popular = PopularityRecommender().fit(TRAIN)  # target counts b 3, c 2, e 1 -> ranking [b, c, e]
    split = {"history": [["a"], ["b"]], "target": ["c", "e"]}
    catalogue = ["a", "b", "c", "d", "e", "f"]
    got = evaluate_recommender(popular, split, ks=(1, 2), catalogue=catalogue)
    # everyone gets [b, c]: c at rank 1 for the first row, e missed; MRR@2 = (1/2 + 0) / 2
    assert got["mrr@2"] == pytest.approx(0.25) and got["mrr@1"] == 0.0
    assert got["coverage@1"] == pytest.approx(1 / 6) and got["coverage@2"] == pytest.approx(2 / 6)
    # percentiles over 6 items (a, d, f count 0 -> 0.2 each; e 1 -> 0.6; c 2 -> 0.8; b 3 -> 1.0)
    assert got["popularity_percentile@1"] == pytest.approx(1.0)
    assert got["popularity_percentile@2"] == pytest.approx((1.0 + 0.8) / 2)
    # both baselines through one call share the catalogue and the training popularity
    both = baseline_metrics({"train": TRAIN, "test": split}, "test", ks=(2,), catalogue=catalogue)
    assert both["most_popular"]["coverage@2"] == pytest.approx(2 / 6)
    # transitions: a -> [b, c], b -> [c, e]
    assert both["last_item_transitions"]["coverage@2"] == pytest.approx(3 / 6)
    assert both["last_item_transitions"]["mrr@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert both["last_item_transitions"]["popularity_percentile@2"] == pytest.approx((1.0 + 0.8 + 0.8 + 0.6) / 4)
    assert "seen_recall@2" in both["most_popular"]


def test_item_neighbours_rank_by_similarity_to_the_last_item():
    # a, b, c along one direction (b closest to a), d opposite, e zero (no vector)
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.5, 0.5], [-1.0, 0.0], [0.0, 0.0]])
    model = ItemNeighboursRecommender(vectors, ["a", "b", "c", "d", "e"]).fit(TRAIN)
    assert model.recommend_one(["x", "a"], k=3) == ["b", "c", "d"]  # never the last item itself
    assert model.recommend_one(["d"], k=2) == ["c", "b"]
    # every other embedded item, then the popular ones not listed (e has no vector: only as a fallback)
    assert model.recommend_one(["a"], k=5) == ["b", "c", "d", "e"]
    assert model.recommend_one(["e"], k=2) == ["b", "c"]  # zero vector: popularity
    assert model.recommend_one(["unknown"], k=2) == ["b", "c"]
    assert model.recommend([["a"], ["d"], []], k=1) == [["b"], ["c"], ["b"]]
    with pytest.raises(ValueError, match="embeddings must be"):
        ItemNeighboursRecommender(vectors[:2], ["a", "b", "c"])
    with pytest.raises(ValueError, match="unique"):
        ItemNeighboursRecommender(vectors[:2], ["a", "a"])
    with pytest.raises(RuntimeError, match="not fitted"):
        ItemNeighboursRecommender(vectors, list("abcde")).recommend_one(["a"])
    with pytest.raises(NotImplementedError):
        model.cross_entropy(TRAIN)


def test_benchmark_neighbour_rows(shared_data_dir, capsys, monkeypatch):
    script = load_script("benchmarks/baselines.py", monkeypatch)
    rows = script.main(
        ["--data_dir", str(shared_data_dir), "--dataset", "ml-100k", "--neighbours", "collaborative"]
        + ["--collaborative_dim", "16"]
    )
    printed = capsys.readouterr().out
    row = rows[2]
    assert row["model"] == "last-item collaborative neighbours"
    for split in ("validation", "test"):
        parts = row["by_transition"][split]
        overall = sum(p["num_examples"] * p["recall@10"] for p in parts.values()) / 943
        assert overall == pytest.approx(row[split]["recall@10"])
    assert "| last-item collaborative neighbours | validation |" in printed
    with pytest.raises(ValueError, match="--neighbours takes text and/or collaborative"):
        script.main(["--data_dir", str(shared_data_dir), "--dataset", "ml-100k", "--neighbours", "image"])
