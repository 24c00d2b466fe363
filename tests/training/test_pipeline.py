"""The one-command pipeline on ML-100K (real item text -> MiniLM -> RQ-VAE -> tokenizer -> tiny TIGER -> test),
then scripts/evaluate.py and scripts/recommend.py on the saved model. Slow: minutes on 2 cores."""

import json
import re
import subprocess

import pytest
from tiger_training_helpers import PYTHON, REPO_ROOT, TINY_MODEL, script_env

from hf_tiger.baselines import LastItemTransitionRecommender, evaluate_recommender
from hf_tiger.data import load_sequences
from hf_tiger.training import run_pipeline

pytestmark = pytest.mark.slow


def test_pipeline_then_evaluate_and_recommend_scripts(shared_data_dir, tmp_path):
    out = tmp_path / "run"
    results = run_pipeline(
        "ml-100k",
        data_dir=str(shared_data_dir),
        output_dir=str(out),
        rqvae_num_train_epochs=2,
        rqvae_codebook_size=16,
        rqvae_standardize_inputs=True,
        collision_size=64,
        num_user_buckets=32,
        max_train_prefixes_per_user=2,
        max_eval_samples=40,
        max_test_samples=40,
        max_steps=6,
        eval_strategy="steps",
        save_strategy="steps",
        eval_steps=3,
        save_steps=3,
        per_device_train_batch_size=32,
        generation_num_beams=10,
        tokenized_cache_dir=str(tmp_path / "cache"),
        disable_tqdm=True,
        num_sample_recommendations=2,
        **TINY_MODEL,
    )
    saved = json.loads((out / "results.json").read_text())
    assert saved["test"]["num_examples"] == 40 and 0.0 <= saved["test"]["recall@10"] <= 1.0
    assert saved["config"]["stage1"]["semantic_ids"]["num_items"] == 1682
    assert set(saved["timings"]) >= {"embeddings", "rqvae", "tiger_train_and_test", "baselines", "total"}
    # The count baselines are scored on the same 40 test rows as TIGER.
    splits = load_sequences("ml-100k", data_dir=shared_data_dir)
    transitions = LastItemTransitionRecommender().fit(splits["train"])
    from hf_tiger import SemanticIDTokenizer

    catalogue = SemanticIDTokenizer.from_pretrained(out).item_ids  # coverage is over TIGER's catalogue
    assert saved["baselines"]["last_item_transitions"] == evaluate_recommender(
        transitions, splits["test"].select(range(40)), transitions=transitions, catalogue=catalogue
    )
    assert {"mrr@10", "coverage@10", "popularity_percentile@10"} <= set(saved["test"])
    # the demo config also scores TIGER + the count prior, its weight chosen on validation, on the same test rows
    fusion = saved["prior_fusion"]
    assert set(fusion["validation"]) == {"0.5", "1.0", "2.0"} and fusion["test"]["num_examples"] == 40
    # TIGER's test metrics carry the seen / unseen split of the same rows
    test = saved["test"]
    assert test["seen_num_examples"] + test["unseen_num_examples"] == 40
    assert test["seen_num_examples"] == saved["baselines"]["last_item_transitions"]["seen_num_examples"]
    seen, unseen = test["seen_num_examples"], test["unseen_num_examples"]
    combined = (test["seen_recall@10"] * seen + test["unseen_recall@10"] * unseen) / 40
    assert combined == pytest.approx(test["recall@10"])
    assert saved["baselines"]["most_popular"]["num_examples"] == 40
    samples = results["sample_recommendations"]
    assert len(samples) == 2 and all(len(s["recommendations"]) == 5 for s in samples)
    assert all(r["text"] for s in samples for r in s["recommendations"])  # item text shown
    assert (out / "tokenizer" / "tokenizer_config.json").exists() and (out / "rqvae" / "config.json").exists()
    rqvae_config = json.loads((out / "rqvae" / "config.json").read_text())
    assert rqvae_config["standardize_inputs"] is True  # --rqvae_standardize_inputs reaches the RQ-VAE
    # the demo config's collaborative vectors (64-d) are appended to the 384-d MiniLM text embeddings
    assert rqvae_config["collaborative_dim"] == 64 and rqvae_config["input_dim"] == 384 + 64
    assert saved["config"]["stage1"]["collaborative"]["dim"] == 64
    from safetensors import safe_open

    with safe_open(str(out / "rqvae" / "model.safetensors"), "pt") as weights:
        assert {"input_mean", "input_std"} <= set(weights.keys())
    assert not (out / "training_args.bin").exists()

    evaluated = subprocess.run(
        [PYTHON, str(REPO_ROOT / "scripts" / "evaluate.py"), "--model_name_or_path", str(out), "--dataset", "ml-100k",
         "--data_dir", str(shared_data_dir), "--split", "test", "--num_beams", "10", "--max_samples", "40",
         "--output_file", str(tmp_path / "eval.json")],
        env=script_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval.json").read_text())["metrics"]
    for key in ("recall@5", "recall@10", "ndcg@5", "ndcg@10"):  # the saved best model reproduces the test run
        assert metrics[key] == pytest.approx(saved["test"][key]), key

    recommended = subprocess.run(
        [PYTHON, str(REPO_ROOT / "scripts" / "recommend.py"), "--model_name_or_path", str(out), "--items", "1", "50",
         "181", "--top_k", "5", "--dataset", "ml-100k", "--data_dir", str(shared_data_dir)],
        env=script_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert recommended.returncode == 0, recommended.stderr[-3000:]
    lines = [line for line in recommended.stdout.splitlines() if re.match(r"^\s*\d+\.\s", line)]
    assert len(lines) == 5 and "Star Wars" in recommended.stdout  # item 50's text in the history listing
