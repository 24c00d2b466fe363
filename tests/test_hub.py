"""The recommender repo layout, model cards, push_to_hub up to the network boundary, and loading by repo id."""

import json

import pytest
from huggingface_hub import EvalResult, ModelCard

from hf_tiger.hub import build_eval_results, create_model_card, extract_test_metrics, load_results

RESULTS = {
    "dataset": "amazon-p5/beauty",
    "validation": {"recall@5": 0.91, "ndcg@5": 0.92},
    "test": {"recall@5": 0.0511, "recall@10": 0.0702, "ndcg@5": 0.0333, "ndcg@10": 0.0398, "loss": 2.5},
    "config": {"learning_rate": 0.001, "num_train_epochs": 3, "ks": [5, 10]},
    "versions": {"torch": "2.13.0", "transformers": "5.23.0"},
}
CARD_ARGS = dict(
    repo_id="org/tiger-beauty",
    catalogue_size=12101,
    num_levels=4,
    codebook_sizes=[256, 256, 256, 8],
    num_user_buckets=2000,
    model_size="T5 encoder-decoder, 4+4 layers, d_model 128, 6 heads, d_ff 1024",
    num_parameters=4_567_890,
    sentence_encoder="sentence-transformers/all-MiniLM-L6-v2",
)


# ---------------------------------------------------------------------------- results.json -> metrics


def test_extract_test_metrics_takes_test_split_only():
    metrics = extract_test_metrics(RESULTS)
    assert metrics == {"Recall@5": 0.0511, "Recall@10": 0.0702, "NDCG@5": 0.0333, "NDCG@10": 0.0398}


@pytest.mark.parametrize(
    "results",
    [
        {"test_recall@5": 0.1, "test_ndcg@10": 0.2, "eval_recall@5": 0.9},
        {"metrics": {"test": {"recall_5": 0.1, "ndcg_10": 0.2}, "validation": {"recall_5": 0.9}}},
        {"test_metrics": {"test_recall@5": 0.1, "test_ndcg@10": 0.2}},
    ],
)
def test_extract_test_metrics_layouts(results):
    assert extract_test_metrics(results) == {"Recall@5": 0.1, "NDCG@10": 0.2}


def test_extract_test_metrics_rejects_nan_and_ignores_validation():
    with pytest.raises(ValueError, match="recall@5"):
        extract_test_metrics({"test": {"recall@5": float("nan")}})
    assert extract_test_metrics({"validation": {"recall@5": 0.3}, "eval_ndcg@5": 0.2}) == {}


def test_load_results_reports_bad_json_line(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{\n  "test": {\n    "recall@5": 0.1,\n  }\n}\n')
    with pytest.raises(ValueError, match=r"results.json: line 4"):
        load_results(path)
    path.write_text(json.dumps(RESULTS))
    assert load_results(path) == RESULTS


def test_build_eval_results():
    results = build_eval_results({"Recall@10": 0.07, "NDCG@5": 0.03}, "amazon-p5/beauty")
    assert all(isinstance(r, EvalResult) for r in results)
    assert [(r.metric_type, r.metric_name, r.metric_value, r.metric_args) for r in results] == [
        ("recall", "Recall@10", 0.07, {"k": 10}),
        ("ndcg", "NDCG@5", 0.03, {"k": 5}),
    ]
    assert {r.dataset_split for r in results} == {"test"}
    assert {r.task_type for r in results} == {"next-item-recommendation"}


# ---------------------------------------------------------------------------- the card


def test_model_card_round_trip_carries_metrics(tmp_path):
    card = create_model_card(**CARD_ARGS, results=RESULTS, has_item_text=True, example_history=[12, 7, 431])
    path = tmp_path / "README.md"
    path.write_text(str(card), encoding="utf-8")
    loaded = ModelCard.load(path)

    data = loaded.data
    assert data.library_name == "transformers"
    assert data.datasets == ["amazon-p5/beauty"]
    assert {"hf_tiger", "tiger", "recommendation", "generative-retrieval"} <= set(data.tags)
    assert sorted(data.metrics) == ["ndcg", "recall"]
    metrics = {r.metric_name: r.metric_value for r in data.eval_results}
    assert metrics == {"Recall@5": 0.0511, "Recall@10": 0.0702, "NDCG@5": 0.0333, "NDCG@10": 0.0398}
    assert {r.dataset_type for r in data.eval_results} == {"amazon-p5/beauty"}
    assert {r.dataset_split for r in data.eval_results} == {"test"}

    text = loaded.text
    assert "| Recall@10 | 0.0702 |" in text
    assert "0.91" not in text  # validation numbers never reach the card
    assert "Recall@5 0.0454" in text  # the paper's reference numbers for Beauty
    assert 'pipeline("next-item-recommendation", model="org/tiger-beauty")' in text
    assert 'trust_remote_code=True' in text and 'subfolder="rqvae"' in text
    assert "learning_rate: 0.001" in text and "num_train_epochs: 3" in text
    assert "torch 2.13.0, transformers 5.23.0" in text
    assert "12,101" in text and "sentence-transformers/all-MiniLM-L6-v2" in text
    assert "[12, 7, 431]" in text
    assert "@inproceedings{rajput2023tiger" in text and "Recommender Systems with Generative Retrieval" in text
    assert "## Limitations" in text


def test_model_card_without_results(tmp_path):
    card = create_model_card(**{**CARD_ARGS, "repo_id": "org/tiger-ml"}, dataset_name="ml-100k")
    loaded = ModelCard(str(card))
    assert loaded.data.eval_results is None
    assert loaded.data.datasets == ["ml-100k"]
    assert "No evaluation results were supplied" in loaded.text
    assert "TIGER paper reports" not in loaded.text


def test_model_card_template_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="template"):
        create_model_card(**CARD_ARGS, template_path=tmp_path / "missing.md")
    template = tmp_path / "card.md"
    template.write_text("---\n{{ card_data }}\n---\n\n# {{ model_name }} on {{ dataset_pretty_name }}\n")
    card = create_model_card(**CARD_ARGS, results=RESULTS, template_path=template)
    assert card.text.strip() == "# tiger-beauty on Amazon Beauty (2014 5-core, P5 / TIGER split)"
    assert len(card.data.eval_results) == 4
