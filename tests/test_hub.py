"""The recommender repo layout, model cards, push_to_hub up to the network boundary, and loading by repo id."""

import json
import sys
from pathlib import Path

import pytest
import torch
from hub_helpers import (
    EMBEDDING_DIM,
    ITEM_IDS,
    ITEM_TEXTS,
    NUM_ITEMS,
    REPO_ID,
    build_hub_cache,
    run_without_hf_tiger,
    tiny_recommender,
    use_hub_cache,
)
from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard
from huggingface_hub.hf_api import RepoUrl
from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer

from hf_tiger import RQVAEModel, SemanticIDTokenizer, TigerForConditionalGeneration, TigerRecommender
from hf_tiger.hub import build_eval_results, create_model_card, extract_test_metrics, load_results

# The layout `hf_tiger.training.train` writes (test metrics without the "test_" prefix).
REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = {
    "dataset": "amazon-p5/beauty",
    "test": {"recall@5": 0.0511, "recall@10": 0.0702, "ndcg@5": 0.0333, "ndcg@10": 0.0398, "loss": 2.5},
    "test_seconds": 41.0,
    "best_validation": {"metric": "recall@10", "value": 0.0913, "checkpoint": "runs/x/checkpoint-1200"},
    "validation_history": [{"step": 1200, "eval_recall@5": 0.91, "eval_ndcg@5": 0.92}],
    "train": {"epochs": 3.0, "global_step": 1200, "train_loss": 3.1, "wall_seconds": 612.0},
    "config": {
        "data": {"dataset": "amazon-p5/beauty", "max_history": 20},
        "training": {"learning_rate": 0.001, "num_train_epochs": 3, "ks": [5, 10]},
    },
    "versions": {"torch": "2.13.0", "transformers": "5.23.0"},
    "hardware": {"device": "cpu", "torch_threads": 2, "world_size": 1},
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


def test_extract_test_metrics_keeps_beyond_accuracy_metrics():
    results = {
        "test": {
            "recall@10": 0.07,
            "mrr@10": 0.03,
            "coverage@10": 0.4,
            "popularity_percentile@10": 0.8,
            "seen_recall@10": 0.1,
            "unseen_recall@10": 0.02,
            "seen_num_examples": 10,
        }
    }
    metrics = extract_test_metrics(results)
    assert metrics == {
        "Recall@10": 0.07,
        "MRR@10": 0.03,
        "SeenRecall@10": 0.1,
        "UnseenRecall@10": 0.02,
        "Coverage@10": 0.4,
        "PopularityPercentile@10": 0.8,
    }
    kinds = [(r.metric_type, r.metric_args) for r in build_eval_results(metrics, "ml-100k")]
    assert kinds == [
        ("recall", {"k": 10}),
        ("mrr", {"k": 10}),
        ("seen_recall", {"k": 10}),
        ("unseen_recall", {"k": 10}),
        ("coverage", {"k": 10}),
        ("popularity_percentile", {"k": 10}),
    ]


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
    assert "3 epochs, 1,200 steps, 10.2 min wall time, on CPU (2 threads)" in text
    assert "validation recall@10 = 0.0913" in text
    assert "Note:" not in text
    assert "torch 2.13.0, transformers 5.23.0" in text
    assert "12,101" in text and "sentence-transformers/all-MiniLM-L6-v2" in text
    assert "[12, 7, 431]" in text
    assert "@inproceedings{rajput2023tiger" in text and "Recommender Systems with Generative Retrieval" in text
    assert "## Limitations" in text


def test_model_card_flags_partial_test_results():
    results = {**RESULTS, "test_note": "first 100 test rows only: not a full test result"}
    card = create_model_card(**CARD_ARGS, results=results)
    assert "**Note: first 100 test rows only: not a full test result.**" in card.text


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


# ---------------------------------------------------------------------------- the recommender folder

EXPECTED_FILES = [
    "README.md",
    "config.json",
    "configuration_rqvae.py",
    "configuration_tiger.py",
    "generation_config.json",
    "generation_tiger.py",
    "hf_tiger.json",
    "items.jsonl",
    "model.safetensors",
    "modeling_rqvae.py",
    "modeling_tiger.py",
    "pipeline_tiger.py",
    "results.json",
    "rqvae/config.json",
    "rqvae/configuration_rqvae.py",
    "rqvae/model.safetensors",
    "rqvae/modeling_rqvae.py",
    "semantic_ids.json",
    "tokenization_tiger.py",
    "tokenizer_config.json",
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return build_hub_cache(tmp_path_factory)


def test_save_pretrained_layout(hub):
    folder, recommender = hub["folder"], hub["recommender"]
    assert hub["files"] == EXPECTED_FILES
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == EXPECTED_FILES

    meta = json.loads((folder / "hf_tiger.json").read_text())
    assert meta["sentence_encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["rqvae_subfolder"] == "rqvae" and meta["items_file"] == "items.jsonl"
    assert meta["catalogue_size"] == NUM_ITEMS and meta["embedding_dim"] == EMBEDDING_DIM
    assert meta["catalogue_fingerprint"] == recommender.tokenizer.catalogue_fingerprint()
    assert meta["dataset"] == "amazon-p5/beauty" and meta["item_id_type"] == "str"

    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSeq2SeqLM"] == "modeling_tiger.TigerForConditionalGeneration"
    assert config["custom_pipelines"]["next-item-recommendation"] == {
        "impl": "pipeline_tiger.NextItemRecommendationPipeline",
        "pt": ["AutoModelForSeq2SeqLM"],
        "type": "text",
    }
    rows = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    assert [r["item_id"] for r in rows] == ITEM_IDS
    assert all(r["text"] == ITEM_TEXTS[r["item_id"]] for r in rows)
    assert json.loads((folder / "results.json").read_text()) == recommender.results

    card = ModelCard.load(folder / "README.md")
    assert {r.metric_name: r.metric_value for r in card.data.eval_results} == {"Recall@5": 0.25, "NDCG@5": 0.125}
    assert f'model="{REPO_ID}"' in card.text and "| Catalogue size | 12 items |" in card.text
    assert "most recent 6 items" in card.text and "(codebook sizes 4, 4, 12)" in card.text


def test_save_refuses_mismatched_catalogues(tmp_path):
    recommender = tiny_recommender()
    recommender.tokenizer = tiny_recommender(num_items=6).tokenizer  # another collision level size
    with pytest.raises(ValueError, match="do not match"):
        recommender.save_pretrained(tmp_path / "bad")
    assert not (tmp_path / "bad" / "config.json").exists()


# ---------------------------------------------------------------------------- push_to_hub (network patched)


def test_push_to_hub_uploads_exactly_the_saved_files(monkeypatch, tmp_path, hub):
    calls = {}

    def fake_create_repo(self, repo_id, *, token=None, private=None, exist_ok=False, **kwargs):
        calls["create_repo"] = {"repo_id": repo_id, "token": token, "private": private, "exist_ok": exist_ok}
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def fake_create_commit(self, repo_id, operations, *, commit_message, token=None, revision=None, create_pr=None,
                           **kwargs):
        uploaded = {}
        for op in operations:
            assert isinstance(op, CommitOperationAdd)
            with open(op.path_or_fileobj, "rb") as f:  # the temporary folder still exists during the commit
                uploaded[op.path_in_repo] = f.read()
        calls["create_commit"] = {"repo_id": repo_id, "files": uploaded, "message": commit_message, "token": token,
                                  "revision": revision, "create_pr": create_pr}
        return "commit-info"

    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(HfApi, "create_commit", fake_create_commit)
    recommender = hub["recommender"]
    result = recommender.push_to_hub(REPO_ID, private=True, token="hf_test", commit_message="tiny tiger")

    assert result == "commit-info"
    assert calls["create_repo"] == {"repo_id": REPO_ID, "token": "hf_test", "private": True, "exist_ok": True}
    commit = calls["create_commit"]
    assert (commit["repo_id"], commit["message"], commit["token"]) == (REPO_ID, "tiny tiger", "hf_test")
    assert sorted(commit["files"]) == EXPECTED_FILES
    saved = hub["folder"]
    for name, content in commit["files"].items():
        if name != "model.safetensors" and not name.endswith("/model.safetensors"):
            assert content == (saved / name).read_bytes(), name
    card = ModelCard(commit["files"]["README.md"].decode("utf-8"))
    assert {r.metric_name: r.metric_value for r in card.data.eval_results} == {"Recall@5": 0.25, "NDCG@5": 0.125}
    assert card.data.library_name == "transformers" and "hf_tiger" in card.data.tags
    assert f'pipeline("next-item-recommendation", model="{REPO_ID}", trust_remote_code=True)' in card.text
    from safetensors.torch import load

    assert torch.equal(load(commit["files"]["model.safetensors"])["catalogue"], recommender.model.catalogue)


# ---------------------------------------------------------------------------- loading by repo id (offline)


def test_load_by_repo_id_from_hub_cache(monkeypatch, hub):
    use_hub_cache(monkeypatch, hub["cache"])
    original = hub["recommender"]
    model = AutoModelForSeq2SeqLM.from_pretrained(REPO_ID)
    tokenizer = AutoTokenizer.from_pretrained(REPO_ID)
    rqvae = AutoModel.from_pretrained(REPO_ID, subfolder="rqvae")
    assert isinstance(model, TigerForConditionalGeneration) and isinstance(tokenizer, SemanticIDTokenizer)
    assert isinstance(rqvae, RQVAEModel)
    assert str(hub["snapshot"]) in str(model.config._name_or_path) or model.name_or_path == REPO_ID

    histories = [[ITEM_IDS[1], ITEM_IDS[2]], [ITEM_IDS[5]]]
    assert model.recommend(histories, tokenizer=tokenizer, top_k=5) == original.recommend(histories, top_k=5)
    batch = tokenizer.batch_encode_histories(histories, return_tensors="pt")
    labels = torch.tensor([tokenizer.encode_target(ITEM_IDS[3]), tokenizer.encode_target(ITEM_IDS[4])])
    with torch.no_grad():
        expected = original.model(**batch, labels=labels).logits
        torch.testing.assert_close(model(**batch, labels=labels).logits, expected)
    embeddings = torch.randn(6, EMBEDDING_DIM)
    assert torch.equal(rqvae.get_semantic_ids(embeddings), original.rqvae.get_semantic_ids(embeddings))

    loaded = TigerRecommender.from_pretrained(REPO_ID)
    assert loaded.sentence_encoder == "sentence-transformers/all-MiniLM-L6-v2"
    assert loaded.item_text(ITEM_IDS[3]) == ITEM_TEXTS[ITEM_IDS[3]]
    assert loaded.results == original.results and loaded.dataset_name == "amazon-p5/beauty"
    assert loaded.recommend(histories, top_k=5) == original.recommend(histories, top_k=5)


@pytest.mark.slow  # a fresh Python process importing torch + transformers (~10-20 s on 2 shared cores)
def test_load_by_repo_id_without_hf_tiger(hub, tmp_path):
    """A fresh process that cannot import hf_tiger loads model, tokenizer, RQ-VAE and pipeline by repo id."""
    original = hub["recommender"]
    histories = [[ITEM_IDS[1], ITEM_IDS[2]], [ITEM_IDS[5]]]
    embeddings = torch.randn(6, EMBEDDING_DIM)
    expected = {
        "recommend": original.recommend(histories, top_k=5),
        "pipeline": [[r["item_id"] for r in row] for row in original.pipeline()(histories, top_k=4)],
        "codes": original.rqvae.get_semantic_ids(embeddings).tolist(),
    }
    code = f"""
    import json
    import torch
    from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

    repo = {REPO_ID!r}
    model = AutoModelForSeq2SeqLM.from_pretrained(repo, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(repo, trust_remote_code=True)
    rqvae = AutoModel.from_pretrained(repo, subfolder="rqvae", trust_remote_code=True)
    recommender = pipeline("next-item-recommendation", model=repo, trust_remote_code=True, device="cpu")
    histories = {histories!r}
    out = recommender(histories, top_k=4)
    print("RESULT" + json.dumps({{
        "classes": [type(model).__module__, type(tokenizer).__module__, type(rqvae).__module__,
                    type(recommender).__module__],
        "recommend": model.recommend(histories, tokenizer=tokenizer, top_k=5),
        "pipeline": [[r["item_id"] for r in row] for row in out],
        "texts": [r.get("text") for r in out[0]],
        "codes": rqvae.get_semantic_ids(torch.tensor({embeddings.tolist()!r})).tolist(),
    }}))
    """
    proc = run_without_hf_tiger(code, hf_home=hub["hf_home"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert all(module.startswith("transformers_modules.") for module in result["classes"]), result["classes"]
    assert result["recommend"] == expected["recommend"]
    assert result["pipeline"] == expected["pipeline"]
    assert result["texts"] == [ITEM_TEXTS[i] for i in expected["pipeline"][0]]
    assert result["codes"] == expected["codes"]


# ---------------------------------------------------------------------------- a training run -> repo (script)


def make_training_run(run_dir, recommender, encoder_path):
    """The files `scripts/run_pipeline.py` leaves: best model + tokenizer, rqvae/, results.json."""
    recommender.model.save_pretrained(run_dir)
    recommender.tokenizer.save_pretrained(run_dir)
    recommender.rqvae.save_pretrained(run_dir / "rqvae")
    results = {**RESULTS, "dataset": "ml-100k", "config": {**RESULTS["config"], "stage1": {"encoder": encoder_path}}}
    (run_dir / "results.json").write_text(json.dumps(results))
    return results


def test_from_training_run_with_item_text(tmp_path, shared_data_dir):
    from hf_tiger.data import minilm_path

    recommender = tiny_recommender(item_ids=range(1, 11))  # MovieLens ids
    results = make_training_run(tmp_path / "run", recommender, str(minilm_path()))
    loaded = TigerRecommender.from_training_run(tmp_path / "run", data_dir=shared_data_dir)
    assert loaded.dataset_name == "ml-100k" and loaded.results == results
    assert loaded.sentence_encoder == "sentence-transformers/all-MiniLM-L6-v2"  # the local MiniLM path, made portable
    assert sorted(loaded.items) == list(range(1, 11))
    assert loaded.item_text(1).startswith("Toy Story (1995)")
    assert loaded.recommend([[1, 2]], top_k=3) == recommender.recommend([[1, 2]], top_k=3)


def test_push_to_hub_script(monkeypatch, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("push_to_hub_script", REPO_ROOT / "scripts" / "push_to_hub.py")
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, script)  # dataclasses look their module up
    spec.loader.exec_module(script)

    recommender = tiny_recommender()
    make_training_run(tmp_path / "run", recommender, "sentence-transformers/sentence-t5-base")
    uploaded = {}
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: RepoUrl(f"https://huggingface.co/{repo_id}"))

    def fake_create_commit(self, repo_id, operations, **kwargs):
        uploaded.update({op.path_in_repo: open(op.path_or_fileobj, "rb").read() for op in operations})
        uploaded["_kwargs"] = {"repo_id": repo_id, **kwargs}

    monkeypatch.setattr(HfApi, "create_commit", fake_create_commit)
    code = script.main([
        "--run_dir", str(tmp_path / "run"), "--no_item_text", "--repo_id", REPO_ID, "--private",
        "--save_dir", str(tmp_path / "repo"), "--license", "apache-2.0", "--tags", "movielens",
    ])
    assert code == 0
    kwargs = uploaded.pop("_kwargs")
    assert kwargs["repo_id"] == REPO_ID and kwargs["commit_message"] == "Upload TIGER recommender"
    expected = [f for f in EXPECTED_FILES if f != "items.jsonl"]
    assert sorted(uploaded) == expected
    saved = sorted(p.relative_to(tmp_path / "repo").as_posix() for p in (tmp_path / "repo").rglob("*") if p.is_file())
    assert saved == expected
    assert uploaded["README.md"] == (tmp_path / "repo" / "README.md").read_bytes()
    card = ModelCard(uploaded["README.md"].decode())
    assert card.data.license == "apache-2.0" and "movielens" in card.data.tags
    assert card.data.datasets == ["ml-100k"] and len(card.data.eval_results) == 4
    assert json.loads(uploaded["hf_tiger.json"])["sentence_encoder"] == "sentence-transformers/sentence-t5-base"


def test_minimal_repo_without_rqvae_or_item_text(tmp_path):
    full = tiny_recommender(item_ids=range(1, 9))  # int ids
    minimal = TigerRecommender(full.model, full.tokenizer)
    files = minimal.save_pretrained(tmp_path / "minimal")
    assert not any(f.startswith("rqvae/") or f in ("items.jsonl", "results.json", "modeling_rqvae.py") for f in files)
    meta = json.loads((tmp_path / "minimal" / "hf_tiger.json").read_text())
    assert meta["rqvae_subfolder"] is None and meta["items_file"] is None and meta["item_id_type"] == "int"
    card = ModelCard.load(tmp_path / "minimal" / "README.md")
    assert card.data.eval_results is None and "Item text in this repo | no" in card.text

    loaded = TigerRecommender.from_pretrained(tmp_path / "minimal")
    assert loaded.rqvae is None and loaded.items == {} and loaded.results is None
    out = loaded.pipeline()([1, 2], top_k=3)
    assert [r["item_id"] for r in out] == full.recommend([[1, 2]], top_k=3)[0] and all("text" not in r for r in out)
    with pytest.raises(ValueError, match="RQ-VAE"):
        loaded.add_items([99], embeddings=torch.randn(1, EMBEDDING_DIM))


# ---------------------------------------------------------------------------- the count prior shipped with the repo


def test_a_recommender_ships_its_transition_prior(tmp_path, shared_data_dir):
    from hf_tiger import TransitionPrior
    from hf_tiger.baselines import LastItemTransitionRecommender
    from hf_tiger.data import minilm_path

    recommender = tiny_recommender(item_ids=range(1, 11))
    ids = recommender.tokenizer.item_ids
    counts = LastItemTransitionRecommender().fit(
        {"history": [[ids[0]], [ids[0]], [ids[3]]], "target": [ids[5], ids[5], ids[8]]}
    )
    recommender.transition_prior = TransitionPrior.from_recommender(counts, recommender.tokenizer, weight=20.0)
    files = recommender.save_pretrained(tmp_path / "repo")
    assert "transition_prior.safetensors" in files
    assert json.loads((tmp_path / "repo" / "hf_tiger.json").read_text())["transition_prior_file"] == (
        "transition_prior.safetensors"
    )
    loaded = TigerRecommender.from_pretrained(tmp_path / "repo")
    prior = loaded.transition_prior
    assert prior.weight == 20.0 and prior.backoff == 1.0
    assert prior.catalogue_fingerprint == recommender.tokenizer.catalogue_fingerprint()
    for name in ("successor_ptr", "successor_rows", "successor_counts", "popularity_counts"):
        assert torch.equal(getattr(prior, name), getattr(recommender.transition_prior, name)), name
    # recommend() fuses the shipped prior by default; item_prior=None is TIGER alone
    fused = loaded.recommend([[ids[2], ids[0]]], top_k=3)
    assert fused == recommender.recommend([[ids[2], ids[0]]], top_k=3) and fused[0][0] == ids[5]
    alone = loaded.recommend([[ids[2], ids[0]]], top_k=3, item_prior=None)
    assert alone == loaded.model.recommend([[ids[2], ids[0]]], loaded.tokenizer, top_k=3)
    assert [r["item_id"] for r in loaded.pipeline()([ids[2], ids[0]], top_k=3)] == fused[0]
    assert [r["item_id"] for r in loaded.pipeline(item_prior=None)([ids[2], ids[0]], top_k=3)] == alone[0]
    # a prior over another catalogue, or a corrupt file, is refused with the reason
    other = tiny_recommender(item_ids=range(1, 11))
    other.transition_prior = TransitionPrior.from_recommender(counts, tiny_recommender(num_items=12).tokenizer)
    with pytest.raises(ValueError, match="another catalogue"):
        other.save_pretrained(tmp_path / "bad")
    (tmp_path / "repo" / "transition_prior.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot read the transition prior"):
        TigerRecommender.from_pretrained(tmp_path / "repo")

    # a training run that chose a prior weight on validation ships the prior of its training split
    run = make_training_run(tmp_path / "run", tiny_recommender(item_ids=range(1, 11)), str(minilm_path()))
    (tmp_path / "run" / "results.json").write_text(
        json.dumps({**run, "prior_fusion": {"weight": 0.5, "backoff": 2.0, "selected_on": "validation recall@10",
                                             "test": {"recall@10": 0.375, "ndcg@10": 0.25}}})
    )
    from_run = TigerRecommender.from_training_run(tmp_path / "run", data_dir=shared_data_dir)
    assert (from_run.transition_prior.weight, from_run.transition_prior.backoff) == (0.5, 2.0)
    assert from_run.transition_prior.num_items == 10
    card = str(from_run.model_card("org/tiger"))
    assert "| Metric (TIGER + counts) | Value |" in card and "| Recall@10 | 0.3750 |" in card
    assert "This repo ships the counts" in card and "weight\nchosen on validation recall@10" in card
    plain_card = str(tiny_recommender(item_ids=range(1, 11)).model_card("org/tiger"))
    assert "TIGER + counts" not in plain_card
    assert TigerRecommender.from_training_run(tmp_path / "run", data_dir=shared_data_dir,
                                              include_transition_prior=False).transition_prior is None
    assert TigerRecommender.from_training_run(tmp_path / "run", data_dir=shared_data_dir,
                                              include_item_text=False, include_transition_prior=False).items == {}


def test_cold_start_items_join_the_prior_without_counts():
    from hf_tiger import TransitionPrior

    prior = TransitionPrior(torch.tensor([0, 2, 2]), torch.tensor([1, 0]), torch.tensor([3.0, 1.0]), torch.tensor([4.0, 1.0]))
    grown = prior.with_catalogue_size(4)
    assert grown.successor_ptr.tolist() == [0, 2, 2, 2, 2] and grown.popularity_counts.tolist() == [4.0, 1.0, 0.0, 0.0]
    assert grown.num_items == 4 and grown.weight == prior.weight
    with pytest.raises(ValueError, match="cannot shrink"):
        grown.with_catalogue_size(3)
