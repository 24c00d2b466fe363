"""Count-based baselines (hf_tiger.baselines) and their benchmark script, on hand-made rows and on ML-100K."""

import importlib.util
import json
import math
import sys
from collections import Counter
from pathlib import Path

import pytest

from hf_tiger.baselines import LastItemTransitionRecommender, PopularityRecommender, evaluate_recommender
from hf_tiger.data import load_sequences

REPO_ROOT = Path(__file__).resolve().parents[1]

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
    assert set(metrics) == set(popular) == {"recall@5", "ndcg@5", "recall@10", "ndcg@10", "num_examples"}
    assert metrics["num_examples"] == 943


def test_benchmark_script_prints_the_table_with_tiger_rows(shared_data_dir, tmp_path, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "baselines_script", REPO_ROOT / "scripts" / "benchmarks" / "baselines.py"
    )
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, script)  # dataclasses look their module up
    spec.loader.exec_module(script)
    results = {
        "test": {"recall@5": 0.01, "recall@10": 0.02, "ndcg@5": 0.005, "ndcg@10": 0.007, "num_examples": 943},
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
    assert json.loads(out_file.read_text())["rows"][1]["test"]["num_examples"] == 943
