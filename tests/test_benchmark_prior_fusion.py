"""scripts/benchmarks/prior_fusion.py: TIGER with the transition counts fused into its search, beside baselines."""

import json

import pytest
from hub_helpers import load_script, tiny_ml100k_tiger

from hf_tiger.baselines import LastItemTransitionRecommender, evaluate_recommender
from hf_tiger.data import load_sequences


def test_fusion_table_scores_each_weight_beside_the_baselines_on_the_same_rows(
    shared_data_dir, tmp_path, capsys, monkeypatch
):
    script = load_script("benchmarks/prior_fusion.py", monkeypatch)
    folder = tiny_ml100k_tiger(tmp_path / "tiger")
    out_file = tmp_path / "fusion.json"
    report = script.main(
        [
            "--model_name_or_path", str(folder), "--dataset", "ml-100k", "--data_dir", str(shared_data_dir),
            "--weights", "0", "50", "--backoffs", "0.01", "--max_samples", "150", "--num_beams", "10",
            "--output_file", str(out_file),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert json.loads(out_file.read_text()) == report
    names = [row["name"] for row in report["results"]]
    assert names == ["most popular", "transition counts", "TIGER", "TIGER + counts (w=50, b=0.01)"]
    assert "| TIGER + counts (w=50, b=0.01) |" in printed and report["num_rows"] == 150
    by_name = {row["name"]: row["metrics"] for row in report["results"]}
    # the baselines are scored on exactly the sampled rows
    splits = load_sequences("ml-100k", data_dir=shared_data_dir)
    rows = script._rows(splits["validation"], 150, 0)
    counts = LastItemTransitionRecommender().fit(splits["train"])
    assert by_name["transition counts"] == evaluate_recommender(counts, rows, ks=(5, 10), transitions=counts)
    # an untrained TIGER under a dominant count prior recovers what the counts memorise on seen rows
    assert by_name["TIGER + counts (w=50, b=0.01)"]["seen_recall@10"] >= by_name["transition counts"]["seen_recall@10"] - 0.05
    assert by_name["TIGER + counts (w=50, b=0.01)"]["recall@10"] > by_name["TIGER"]["recall@10"]


def test_fusion_arguments_reject_negative_weights(monkeypatch):
    script = load_script("benchmarks/prior_fusion.py", monkeypatch)
    with pytest.raises(ValueError, match="weights must be"):
        script.FusionArguments(model_name_or_path="x", weights=[-1.0])
    with pytest.raises(ValueError, match="backoffs must be"):
        script.FusionArguments(model_name_or_path="x", backoffs=[0.0])


def test_evaluation_with_a_prior_matches_the_fused_recommendations(shared_data_dir, tmp_path):
    """`evaluate_saved_model(prior_weight=...)` (the Trainer path of scripts/evaluate.py) fuses the same prior."""
    from hf_tiger import TransitionPrior
    from hf_tiger.metrics import compute_recommendation_metrics
    from hf_tiger.training.evaluation import evaluate_saved_model, load_model_and_tokenizer

    folder = tiny_ml100k_tiger(tmp_path / "tiger")
    common = dict(dataset="ml-100k", data_dir=str(shared_data_dir), split="validation", num_beams=10, max_samples=80)
    plain = evaluate_saved_model(folder, **common)
    fused = evaluate_saved_model(folder, **common, prior_weight=2.0, prior_backoff=0.5)
    assert fused["prior"] == {"weight": 2.0, "backoff": 0.5} and plain["prior"] is None

    model, tokenizer = load_model_and_tokenizer(folder)
    splits = load_sequences("ml-100k", data_dir=shared_data_dir)
    rows = splits["validation"].select(range(80))
    prior = TransitionPrior.from_recommender(
        LastItemTransitionRecommender().fit(splits["train"]), tokenizer, weight=2.0, backoff=0.5
    )
    for with_prior, result in ((None, plain), (prior, fused)):
        ranked = model.recommend(
            list(rows["history"]), tokenizer, user_ids=list(rows["user_id"]), top_k=10, num_beams=10,
            item_prior=with_prior,
        )  # fmt: skip
        expected = compute_recommendation_metrics(ranked, list(rows["target"]), ks=(5, 10))
        for key in ("recall@5", "recall@10", "ndcg@10"):
            assert result["metrics"][key] == pytest.approx(expected[key]), key
    assert fused["metrics"]["recall@10"] != plain["metrics"]["recall@10"]
