"""scripts/benchmarks/learning_curve.py on ML-100K with a tiny stage 1 and tiny recipes (a few CPU steps)."""

import dataclasses
import json

import pytest
import yaml
from hub_helpers import REPO_ROOT, load_script

SCRIPT = "benchmarks/learning_curve.py"

TINY = {
    "rqvae_num_train_epochs": 2,
    "rqvae_codebook_size": 16,
    "collision_size": 64,
    "num_user_buckets": 32,
    "max_train_prefixes_per_user": 2,
    "d_model": 16,
    "d_kv": 8,
    "d_ff": 32,
    "num_layers": 1,
    "num_heads": 2,
    "per_device_train_batch_size": 8,
    "generation_num_beams": 10,
    "dataloader_num_workers": 0,
}


@pytest.fixture
def tiny_config(tmp_path):
    base = yaml.safe_load(
        (REPO_ROOT / "scripts/configs/tiger_ml100k_small.yaml").read_text()
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**base, **TINY, "tokenized_cache_dir": str(tmp_path / "cache")}))
    recipes = tmp_path / "recipes.yaml"
    recipes.write_text(
        yaml.safe_dump(
            {
                "tiny_users": {"use_user_tokens": True},
                "tiny_rqvae": {"use_user_tokens": False, "embedding_init": "rqvae", "attention_dropout_rate": 0.0},
                "tiny_sequences": {
                    "use_user_tokens": False,
                    "causal_encoder": True,
                    "user_sequences": True,
                    "per_device_train_batch_size": 1,
                },
            }
        )
    )
    return path, recipes


@pytest.mark.slow
def test_learning_curve_table(shared_data_dir, tmp_path, tiny_config, capsys, monkeypatch):
    script = load_script(SCRIPT, monkeypatch)
    config, recipes = tiny_config
    out = tmp_path / "curves"
    payload = script.main(
        [
            *("--dataset", "ml-100k", "--data_dir", str(shared_data_dir), "--output_dir", str(out)),
            *("--config", str(config), "--recipe_file", str(recipes)),
            *("--recipes", "tiny_users", "tiny_rqvae", "tiny_sequences"),
            *("--budget_examples", "32", "--num_points", "2", "--max_eval_samples", "25"),
            *("--train_sample_size", "12", "--num_beams", "10", "--num_user_buckets", "32"),
            *("--stage1_overrides", "rqvae_standardize_inputs=true"),
        ]
    )
    printed = capsys.readouterr().out
    # the stage-1 overrides reach the RQ-VAE the recipes train on
    assert json.loads((out / "stage1" / "rqvae" / "config.json").read_text())["standardize_inputs"] is True
    assert payload["validation_rows"] == 25 and json.loads((out / "curves.json").read_text())["dataset"] == "ml-100k"
    names = [r["recipe"] for r in payload["recipes"]]
    assert names == ["tiny_users", "tiny_rqvae", "tiny_sequences"]
    for recipe in payload["recipes"][:2]:
        assert recipe["steps"] == 4 and [p["step"] for p in recipe["points"]] == [2, 4]
        assert [p["examples_seen"] for p in recipe["points"]] == [16, 32]
    # user sequences: a step trains every target of its window; examples count those targets
    sequences = payload["recipes"][2]
    per_step = sequences["examples_per_step"]
    assert per_step > 1 and sequences["steps"] == round(32 / per_step)
    assert sequences["points"][-1]["examples_seen"] == round(sequences["steps"] * per_step)
    for recipe in payload["recipes"]:
        for point in recipe["points"]:
            v = point["validation"]
            assert 0.0 <= v["unseen_recall@10"] <= 1.0 and 0.0 <= point["train_sample_recall@10"] <= 1.0
            assert v["ndcg@10"] <= v["recall@10"] + 1e-12
    # the baselines are scored on the same validation rows
    transitions = next(b for b in payload["baselines"] if b["name"] == "last-item transitions")
    assert transitions["validation"]["unseen_recall@10"] == 0.0
    assert "| last-item transitions | - | - |" in printed and "| tiny_rqvae | 32 |" in printed
    # a re-run with the same settings reuses the finished recipes from curves.json instead of training again
    again = script.main(
        [
            *("--dataset", "ml-100k", "--data_dir", str(shared_data_dir), "--output_dir", str(out)),
            *("--config", str(config), "--recipe_file", str(recipes), "--recipes", "tiny_rqvae"),
            *("--budget_examples", "32", "--num_points", "2", "--max_eval_samples", "25"),
            *("--train_sample_size", "12", "--num_beams", "10", "--num_user_buckets", "32"),
            *("--stage1_overrides", "rqvae_standardize_inputs=true"),
        ]
    )
    assert "tiny_rqvae: finished in an earlier run" in capsys.readouterr().out
    assert again["recipes"] == [payload["recipes"][1]]
    on_file = json.loads((out / "curves.json").read_text())["recipes"]
    assert [r["recipe"] for r in on_file] == ["tiny_rqvae", "tiny_users", "tiny_sequences"]  # the others stay on file


def test_learning_curve_bad_settings_are_clear_errors(monkeypatch, tmp_path):
    script = load_script(SCRIPT, monkeypatch)
    # every built-in recipe spells out the settings the recipes vary
    for name, overrides in script.load_recipes(script.CurveArguments()).items():
        assert {"use_user_tokens", "per_device_train_batch_size", "learning_rate"} <= set(overrides), name
    with pytest.raises(ValueError, match=r"unknown recipes \['nope'\]"):
        script.load_recipes(script.CurveArguments(recipes=["nope"]))
    with pytest.raises(ValueError, match="KEY=VALUE pairs"):
        script._stage1_args(["rqvae_standardize_inputs"])
    assert script._stage1_args(["a=1", "b=x=y"]) == ["--a", "1", "--b", "x=y"]
    with pytest.raises(ValueError, match="budget_examples must be >= 1"):
        script.CurveArguments(budget_examples=0)
    # a curves.json of other settings is refused instead of being overwritten with the new recipes only
    earlier = tmp_path / "curves.json"
    earlier.write_text(json.dumps({"arguments": {**dataclasses.asdict(script.CurveArguments()), "budget_examples": 7},
                                   "recipes": [{"recipe": "kept"}]}))
    with pytest.raises(ValueError, match=r"other settings \(budget_examples\): pass another --output_dir"):
        script._finished_recipes(earlier, script.CurveArguments())
    assert script._finished_recipes(earlier, script.CurveArguments(budget_examples=7)) == {"kept": {"recipe": "kept"}}
    bad = tmp_path / "bad.yaml"
    bad.write_text("broken: 3\n")
    with pytest.raises(ValueError, match="recipe 'broken'"):
        script.load_recipes(script.CurveArguments(recipe_file=str(bad), recipes=["broken"]))
