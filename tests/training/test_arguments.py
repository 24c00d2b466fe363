"""Argument groups: YAML/JSON configs, command-line overrides, validation."""

import json
from pathlib import Path

import pytest

from hf_tiger.training import parse_args_with_config
from hf_tiger.training.arguments import TigerTrainingArguments

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_yaml_config_with_cli_override(tmp_path):
    config = REPO_ROOT / "scripts" / "configs" / "tiger_beauty_paper.yaml"
    data, semantic, model, training = parse_args_with_config(
        args=[str(config), "--num_train_epochs", "3", "--output_dir", str(tmp_path)]
    )
    assert data.dataset == "amazon-p5/beauty"
    assert (model.num_layers, model.d_model, model.num_heads, model.d_ff, model.dropout_rate) == (4, 128, 6, 1024, 0.1)
    assert training.generation_num_beams == 20 and training.num_train_epochs == 3
    assert training.lr_scheduler_type.value == "cosine" and training.warmup_steps > 0
    assert training.load_best_model_at_end and training.metric_for_best_model == "recall@10"
    assert semantic.rqvae_codebook_size == 256 and semantic.num_user_buckets == 2000


def test_json_config_and_flag_form(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"dataset": "ml-100k", "d_model": 48, "bf16": False, "metric_ks": [1, 5], "metric_for_best_model": "ndcg@5"}))
    data, _, model, training = parse_args_with_config(args=["--config", str(path), "--output_dir", str(tmp_path)])
    assert model.d_model == 48 and training.metric_ks == [1, 5] and training.num_return_sequences == 5


def test_bad_configs_name_the_problem(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: ml-100k\nnot_an_argument: 3\n")
    with pytest.raises(ValueError, match="not_an_argument"):
        parse_args_with_config(args=[str(path)])
    with pytest.raises(ValueError, match="generation_num_beams"):
        TigerTrainingArguments(output_dir=str(tmp_path), generation_num_beams=5, metric_ks=[10])
    with pytest.raises(ValueError, match="metric_for_best_model"):
        TigerTrainingArguments(output_dir=str(tmp_path), metric_for_best_model="recall@20")


def test_warm_start_keeps_the_saved_dropout_unless_given(tmp_path):
    """build_tiger_model: a warm start keeps the saved architecture; only a given dropout_rate replaces the saved one."""
    from hub_helpers import tiny_ml100k_tiger

    from hf_tiger import SemanticIDTokenizer
    from hf_tiger.training import TigerModelArguments
    from hf_tiger.training.train import build_tiger_model

    folder = tiny_ml100k_tiger(tmp_path / "tiger")  # saved with T5's default dropout 0.1 and d_model 16
    tokenizer = SemanticIDTokenizer.from_pretrained(folder)
    assert TigerModelArguments().model_sizes()["dropout_rate"] == 0.1  # a new model's default
    kept = build_tiger_model(tokenizer, TigerModelArguments(model_name_or_path=str(folder)))
    assert kept.config.dropout_rate == 0.1 and kept.config.d_model == 16
    changed = build_tiger_model(
        tokenizer, TigerModelArguments(model_name_or_path=str(folder), dropout_rate=0.0)
    )
    assert changed.config.dropout_rate == 0.0 and changed.config.d_model == 16
    assert changed.encoder.block[0].layer[0].dropout.p == 0.0  # the modules, not only the config
    fresh = build_tiger_model(
        tokenizer, TigerModelArguments(d_model=32, d_kv=8, num_heads=2, dropout_rate=0.25)
    )
    assert fresh.config.dropout_rate == 0.25 and fresh.config.d_model == 32


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO_ROOT / "scripts" / "configs").glob("tiger_*.yaml")))
def test_shipped_training_configs_parse(name, tmp_path):
    """Every shipped TIGER config holds only known arguments with valid values (a typo would stop a long run)."""
    # the GPU config's tf32 / bf16 / fused optimizer need a GPU: checked here for their keys only
    cpu_only = ["--tf32", "false", "--bf16", "false", "--optim", "adamw_torch"] if "gpu" in name else []
    data, _, model, training = parse_args_with_config(
        args=[str(REPO_ROOT / "scripts" / "configs" / name), "--output_dir", str(tmp_path), *cpu_only]
    )
    assert data.dataset and training.output_dir == str(tmp_path)
    if data.user_sequences:
        assert model.causal_encoder, "user_sequences needs causal_encoder"



def test_shipped_learning_curve_recipes_parse(tmp_path):
    """Every recipe of the shipped Beauty learning curves, applied to the CPU config, parses to what it says."""
    from hf_tiger.training import load_config_file

    configs = REPO_ROOT / "scripts" / "configs"
    for name, overrides in load_config_file(str(configs / "curves_beauty.yaml")).items():
        assert {"causal_encoder", "user_sequences", "item_embeddings"} <= set(overrides), name  # means the same
        given = {key: value for key, value in overrides.items() if value is not None}
        flags = [item for key, value in given.items() for item in (f"--{key}", str(value))]
        parsed = parse_args_with_config(args=[str(configs / "tiger_beauty_cpu.yaml"), "--output_dir", str(tmp_path), *flags])
        for key, value in given.items():
            found = [getattr(group, key) for group in parsed if hasattr(group, key)]
            assert found and found[0] == value, (name, key, found)
