"""End to end on ML-100K subsets with a tiny TIGER: test split untouched until the end, resume after a kill,
two-process DDP equals one process. Marked slow (a few tiny CPU runs each)."""

import json
import math
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file
from tiger_training_helpers import PYTHON, REPO_ROOT, TINY_MODEL, script_env, tiny_cli_args
from transformers import TrainerCallback

from hf_tiger.training import DataArguments, TigerTrainingArguments, build_tiger_model, train_tiger
from hf_tiger.training.arguments import TigerModelArguments

pytestmark = pytest.mark.slow

TRAIN_SCRIPT = REPO_ROOT / "scripts" / "train_tiger.py"


class _AccessRecorder:
    """Wraps a split and records every use of it in a shared event list."""

    def __init__(self, split, events):
        self._split = split
        self._events = events

    def __getattr__(self, name):
        self._events.append(("test-split", name))
        return getattr(self._split, name)

    def __getitem__(self, key):
        self._events.append(("test-split", "getitem"))
        return self._split[key]

    def __len__(self):
        self._events.append(("test-split", "len"))
        return len(self._split)


class _EventRecorder(TrainerCallback):
    def __init__(self, events):
        self.events = events

    def on_train_end(self, args, state, control, **kwargs):
        self.events.append(("train-end",))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.events.append(("evaluate", sorted(metrics)))

    def on_predict(self, args, state, control, metrics=None, **kwargs):
        self.events.append(("predict", sorted(metrics)))


def test_test_split_is_read_only_after_training(ml100k, tiny_tokenizer, tmp_path):
    sequences, _ = ml100k
    events = []
    dataset = {
        "train": sequences["train"],
        "validation": sequences["validation"],
        "test": _AccessRecorder(sequences["test"], events),
    }
    torch.manual_seed(0)
    model = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL))
    args = TigerTrainingArguments(
        output_dir=str(tmp_path / "run"), max_steps=4, per_device_train_batch_size=16, per_device_eval_batch_size=16,
        eval_strategy="steps", save_strategy="steps", eval_steps=2, save_steps=2, generation_num_beams=10,
        use_cpu=True, report_to="tensorboard", logging_steps=2, disable_tqdm=True,
    )
    data_args = DataArguments(
        dataset="ml-100k", max_train_samples=128, max_eval_samples=20, max_test_samples=20,
        tokenized_cache_dir=str(tmp_path / "cache"),
    )
    results = train_tiger(model, tiny_tokenizer, dataset, args, data_args, callbacks=[_EventRecorder(events)])
    kinds = [e[0] for e in events]
    first_test_use = kinds.index("test-split")
    assert kinds.index("train-end") < first_test_use
    # Validation drove every evaluation during training; test was predicted exactly once, at the end.
    evaluations = [e for e in events if e[0] == "evaluate"]
    assert len(evaluations) == 2 and all(all(k.startswith("eval_") for k in e[1] if k != "epoch") for e in evaluations)
    predictions = [e for e in events if e[0] == "predict"]
    assert len(predictions) == 1 and kinds.index("predict") > first_test_use
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["test"]["num_examples"] == 20
    assert saved["test"]["recall@10"] == results["test"]["recall@10"]
    assert saved["best_validation"]["checkpoint"].endswith(("checkpoint-2", "checkpoint-4"))
    assert {"torch", "transformers", "datasets"} <= set(saved["versions"])
    assert saved["config"]["training"]["max_steps"] == 4
    assert list((tmp_path / "run").rglob("events.out.tfevents.*"))  # report_to passes through to the Trainer


def _run(args, **kwargs):
    proc = subprocess.run(args, env=script_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, **kwargs)
    return proc


def _final_weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


def test_killed_run_resumes_to_the_same_end(shared_data_dir, tiny_tokenizer_dir, tmp_path):
    cache = tmp_path / "cache"
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    full = _run([PYTHON, str(TRAIN_SCRIPT), *tiny_cli_args(tiny_tokenizer_dir, shared_data_dir, full_dir, cache)])
    assert full.returncode == 0, full.stderr[-3000:]

    # The same run, SIGKILLed right after its first checkpoint (step 4 of 8) is written.
    killer = tmp_path / "killed_run.py"
    killer.write_text(
        textwrap.dedent(
            f"""
            import os, signal, sys
            sys.path.insert(0, {str(REPO_ROOT / "scripts")!r})
            from transformers import TrainerCallback
            import train_tiger as script
            original = script.train_tiger

            class Kill(TrainerCallback):
                def on_save(self, args, state, control, **kwargs):
                    if state.global_step == 4:
                        os.kill(os.getpid(), signal.SIGKILL)

            def patched(*args, **kwargs):
                kwargs["callbacks"] = [Kill()]
                return original(*args, **kwargs)

            script.train_tiger = patched
            script.main(sys.argv[1:])
            """
        )
    )
    args = tiny_cli_args(tiny_tokenizer_dir, shared_data_dir, killed_dir, cache)
    killed = _run([PYTHON, str(killer), *args])
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (killed_dir / "checkpoint-4").is_dir() and not (killed_dir / "results.json").exists()

    resumed = _run([PYTHON, str(TRAIN_SCRIPT), *args, "--resume_from_checkpoint", "last"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = json.loads((full_dir / "results.json").read_text())
    b = json.loads((killed_dir / "results.json").read_text())
    assert b["train"]["resumed_from"].endswith("checkpoint-4")
    assert b["train"]["global_step"] == a["train"]["global_step"] == 8
    for key in ("recall@5", "recall@10", "ndcg@5", "ndcg@10", "loss"):
        assert b["test"][key] == pytest.approx(a["test"][key], rel=1e-5, abs=1e-7), key
    assert b["best_validation"]["value"] == pytest.approx(a["best_validation"]["value"])
    wa, wb = _final_weights(full_dir), _final_weights(killed_dir)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-5, atol=1e-6, msg=name)


def _free_port() -> int:
    """A free local TCP port, so parallel runs of this test do not collide on a fixed one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launcher(name: str) -> list[str]:
    port = str(_free_port())
    if name == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port]
    # `accelerate launch --multi_gpu` runs torch.distributed.run underneath; with no GPU the processes use gloo
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", port]


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_process_ddp_matches_one_process(shared_data_dir, tiny_tokenizer_dir, tmp_path, launcher):
    cache = tmp_path / "cache"
    single_dir, ddp_dir = tmp_path / "single", tmp_path / "ddp"
    single = _run(
        [PYTHON, str(TRAIN_SCRIPT),
         *tiny_cli_args(tiny_tokenizer_dir, shared_data_dir, single_dir, cache, per_device_train_batch_size=16)]
    )
    assert single.returncode == 0, single.stderr[-3000:]
    # Two gloo processes with half the per-device batch: the same global batch of 16 per step.
    ddp = _run(
        [*_launcher(launcher), str(TRAIN_SCRIPT),
         *tiny_cli_args(tiny_tokenizer_dir, shared_data_dir, ddp_dir, cache, per_device_train_batch_size=8,
                        ddp_backend="gloo")]
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = json.loads((single_dir / "results.json").read_text())
    b = json.loads((ddp_dir / "results.json").read_text())
    assert b["hardware"]["world_size"] == 2 and a["hardware"]["world_size"] == 1
    # 41 test rows do not split evenly over 2 processes x batch 8: duplicates must not be counted.
    assert a["test"]["num_examples"] == b["test"]["num_examples"] == 41
    for key in ("recall@5", "recall@10", "ndcg@5", "ndcg@10", "loss"):
        assert b["test"][key] == pytest.approx(a["test"][key], rel=1e-4, abs=1e-6), key
    history_a = [e["eval_loss"] for e in a["validation_history"]]
    history_b = [e["eval_loss"] for e in b["validation_history"]]
    assert history_b == pytest.approx(history_a, rel=1e-4)


def test_last_item_rows_cut_histories_to_their_last_item():
    import datasets

    from hf_tiger.training.train import last_item_rows

    split = datasets.Dataset.from_dict(
        {"user_id": ["a", "a", "b"], "history": [["i1"], ["i1", "i2"], ["i5", "i6", "i7"]], "target": ["i2", "i3", "i8"]}
    )
    short = last_item_rows(split)
    assert short.to_dict() == {"user_id": ["a", "b"], "history": [["i2"], ["i7"]], "target": ["i3", "i8"]}


def test_training_with_last_item_rows_adds_them_to_the_training_rows(ml100k, tiny_tokenizer, tmp_path):
    sequences, _ = ml100k
    args = TigerTrainingArguments(
        output_dir=str(tmp_path / "run"), max_steps=1, per_device_train_batch_size=8, eval_strategy="no",
        save_strategy="no", use_cpu=True, report_to="none", disable_tqdm=True,
    )
    common = {"dataset": "ml-100k", "max_train_samples": 64, "max_eval_samples": 8,
              "tokenized_cache_dir": str(tmp_path / "cache"), "use_user_tokens": False}
    rows = {}
    for flag in (False, True):
        torch.manual_seed(0)
        model = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL))
        results = train_tiger(
            model, tiny_tokenizer, sequences, args, DataArguments(**common, last_item_rows=flag), evaluate_test=False
        )
        rows[flag] = results["trainer"].train_dataset
    first = sequences["train"].select(range(64))
    longer = sum(len(history) > 1 for history in first["history"])
    assert longer > 0
    assert rows[False].num_rows == 64 and rows[True].num_rows == 64 + longer
    assert rows[True][:64] == rows[False][:64]
    added = rows[True].select(range(64, 64 + longer))
    one_item = len(tiny_tokenizer.encode_history([first["history"][0][-1]]))
    assert all(len(ids) == one_item for ids in added["input_ids"])
    expected = [tiny_tokenizer.encode_history(h[-1:]) for h in first["history"] if len(h) > 1]
    assert added["input_ids"] == expected


def _three_step_run(tmp_path, batch_size, max_train_samples, **data_kwargs):
    """Arguments of a 3-step training run on an ML-100K subset, without evaluation or checkpoints."""
    args = TigerTrainingArguments(
        output_dir=str(tmp_path / "run"), max_steps=3, per_device_train_batch_size=batch_size, eval_strategy="no",
        save_strategy="no", use_cpu=True, report_to="none", disable_tqdm=True, learning_rate=0.01,
    )
    data_args = DataArguments(dataset="ml-100k", max_train_samples=max_train_samples, max_eval_samples=8,
                              tokenized_cache_dir=str(tmp_path / "cache"), **data_kwargs)
    return args, data_args


def test_training_on_user_sequences_takes_every_row_once(ml100k, tiny_tokenizer, tmp_path):
    sequences, _ = ml100k
    args, data_args = _three_step_run(tmp_path, batch_size=2, max_train_samples=64, user_sequences=True)
    torch.manual_seed(0)
    bidirectional = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL))
    with pytest.raises(ValueError, match="causal_encoder=True"):
        train_tiger(bidirectional, tiny_tokenizer, sequences, args, data_args, evaluate_test=False)
    model = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL, causal_encoder=True))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    results = train_tiger(model, tiny_tokenizer, sequences, args, data_args, evaluate_test=False)
    train = results["trainer"].train_dataset
    assert train.column_names == ["input_ids", "labels", "history_ends"]
    assert sum(len(labels) for labels in train["labels"]) == 64
    assert results["train"]["global_step"] == 3 and math.isfinite(results["train"]["train_loss"])
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert any(n.startswith("encoder.") for n in changed) and any(n.startswith("decoder.") for n in changed)
    with pytest.raises(ValueError, match="cannot be combined"):
        DataArguments(dataset="ml-100k", user_sequences=True, last_item_rows=True)


def test_training_learns_item_id_embeddings(ml100k, tiny_tokenizer, tmp_path):
    sequences, _ = ml100k
    args, data_args = _three_step_run(tmp_path, batch_size=4, max_train_samples=32)
    model = build_tiger_model(
        tiny_tokenizer, TigerModelArguments(**TINY_MODEL, item_embeddings=True, item_embedding_scale=2.0)
    )
    assert model.config.num_item_embeddings == tiny_tokenizer.catalogue_size
    assert model.config.item_embedding_scale == 2.0 and model.config.item_embedding_init_std == 0.0
    assert bool((model.item_embedding_keys >= 0).all()) and not model.item_embeddings.weight.any()
    train_tiger(model, tiny_tokenizer, sequences, args, data_args, evaluate_test=False)
    learned = model.item_embeddings.weight.detach().abs().sum(-1) > 0
    assert 0 < int(learned.sum()) < tiny_tokenizer.catalogue_size  # the items of the batches' histories only
    assert not learned[-1]  # the row of tokens that are no catalogue item stays zero


def test_training_learns_prefix_output_vectors(ml100k, tiny_tokenizer, tmp_path):
    sequences, _ = ml100k
    args, data_args = _three_step_run(tmp_path, batch_size=4, max_train_samples=32, user_sequences=True)
    model = build_tiger_model(
        tiny_tokenizer,
        TigerModelArguments(**TINY_MODEL, causal_encoder=True, prefix_embeddings=True, prefix_embedding_scale=2.0),
    )
    table = tiny_tokenizer.catalogue_token_ids().tolist()
    prefixes = {tuple(row[:depth]) for row in table for depth in range(1, tiny_tokenizer.num_levels + 1)}
    assert model.config.num_prefix_embeddings == len(prefixes) and model.config.prefix_embedding_scale == 2.0
    assert bool((model.prefix_embedding_keys >= 0).all()) and not model.prefix_embeddings.weight.any()
    results = train_tiger(model, tiny_tokenizer, sequences, args, data_args, evaluate_test=False)
    assert math.isfinite(results["train"]["train_loss"])
    learned = model.prefix_embeddings.weight.detach().abs().sum(-1) > 0
    # every first code is a candidate of every target; deeper prefixes only under the targets' prefixes
    assert len(table) > int(learned.sum()) > len({row[0] for row in table}) and not learned[-1]


def test_a_warm_start_adds_item_and_prefix_vectors(tiny_tokenizer, tmp_path):
    """--model_name_or_path of a model saved without vectors + --item_embeddings / --prefix_embeddings: the vectors
    are added at zero, so the model starts as it was saved."""
    torch.manual_seed(0)
    saved = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL)).eval()
    saved.save_pretrained(tmp_path / "saved")
    grown = build_tiger_model(
        tiny_tokenizer,
        TigerModelArguments(model_name_or_path=str(tmp_path / "saved"), item_embeddings=True, item_embedding_scale=3.0,
                            prefix_embeddings=True, prefix_embedding_scale=2.0),
    ).eval()
    assert grown.config.num_item_embeddings == tiny_tokenizer.catalogue_size and grown.config.item_embedding_scale == 3.0
    assert grown.config.num_prefix_embeddings > tiny_tokenizer.catalogue_size and grown.config.prefix_embedding_scale == 2.0
    assert bool((grown.item_embedding_keys >= 0).all()) and bool((grown.prefix_embedding_keys >= 0).all())
    histories = [tiny_tokenizer.item_ids[:3], tiny_tokenizer.item_ids[5:6]]
    batch = tiny_tokenizer.batch_encode_histories(histories, targets=tiny_tokenizer.item_ids[7:9])
    with torch.no_grad():
        assert torch.equal(grown(**batch).logits, saved(**batch).logits)


def test_prior_weights_are_chosen_on_validation_and_scored_once_on_test(ml100k, tiny_tokenizer, tmp_path):
    sequences, _ = ml100k
    events = []
    dataset = {**sequences, "test": _AccessRecorder(sequences["test"], events)}
    args, data_args = _three_step_run(tmp_path, batch_size=4, max_train_samples=32)
    args.prior_weights, args.prior_backoff, args.generation_num_beams = [0.5, 3.0], 0.5, 10
    data_args.max_eval_samples, data_args.max_test_samples = 60, 60
    torch.manual_seed(0)
    model = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL))
    results = train_tiger(model, tiny_tokenizer, dataset, args, data_args, callbacks=[_EventRecorder(events)])
    fusion = results["prior_fusion"]
    assert set(fusion["validation"]) == {"0.5", "3.0"} and fusion["backoff"] == 0.5
    assert fusion["validation"][str(fusion["weight"])] == max(fusion["validation"].values())
    assert fusion["selected_on"] == "validation recall@10"
    assert fusion["test"]["num_examples"] == 60 and "seen_recall@10" in fusion["test"]
    predictions = [e for e in events if e[0] == "predict"]
    assert len(predictions) == 2 + 2  # plain test, two validation weights, the chosen weight on test
    # the fused test figures are TIGER + counts: on seen rows it recovers what the counts memorise
    assert fusion["test"]["seen_recall@10"] > results["test"]["seen_recall@10"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["prior_fusion"] == fusion
    with pytest.raises(ValueError, match="prior_weights must be positive"):
        TigerTrainingArguments(output_dir=str(tmp_path / "x"), prior_weights=[0.0], report_to="none")
