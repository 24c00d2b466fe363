"""Batch recommendation over a users file, sharded over processes, resumable; 2 processes == 1 process."""

import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest
from hub_helpers import REPO_ROOT, tiny_ml100k_tiger

from hf_tiger import SemanticIDTokenizer, TigerForConditionalGeneration
from hf_tiger.batch_recommend import read_users, recommend_to_files
from hf_tiger.data import load_sequences

USERS = [
    {"user_id": "u1", "history": [1, 50, 181]},
    {"user_id": "u2", "history": [7]},
    {"user_id": "u3", "history": [12, 7, 431, 2]},
    {"user_id": "u4", "history": [100, 200]},
    {"user_id": "u5", "history": [5, 6, 7, 8, 9]},
]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return tiny_ml100k_tiger(tmp_path_factory.mktemp("tiger"))


@pytest.fixture(scope="module")
def tiny(tiny_folder):
    model = TigerForConditionalGeneration.from_pretrained(tiny_folder).eval()
    return model, SemanticIDTokenizer.from_pretrained(tiny_folder)


def test_read_users_from_every_file_type(tmp_path):
    jsonl = tmp_path / "users.jsonl"
    jsonl.write_text("".join(json.dumps(u) + "\n" for u in USERS) + "\n")
    assert read_users(jsonl) == USERS
    csv = tmp_path / "users.csv"
    csv.write_text('user_id,history\nu1,1 50 181\nu2,"[7]"\n')
    assert read_users(csv) == [
        {"user_id": "u1", "history": ["1", "50", "181"]},
        {"user_id": "u2", "history": [7]},
    ]
    parquet = tmp_path / "users.parquet"
    pd.DataFrame(USERS).to_parquet(parquet)
    assert read_users(parquet) == USERS


def test_read_users_bad_input_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_id": 1, "history": [1]}\n{"user_id": 2, "history": [1\n')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        read_users(bad)
    bad.write_text('{"user": 1, "history": [1]}\n')
    with pytest.raises(ValueError, match="'user_id' and 'history'"):
        read_users(bad)
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(ValueError, match="unknown users file type"):
        read_users(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError):
        read_users(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="either a users file"):
        read_users()


def test_read_users_from_a_dataset_split(shared_data_dir):
    users = read_users(dataset="ml-100k", data_dir=shared_data_dir, split="test")
    test = load_sequences("ml-100k", data_dir=shared_data_dir)["test"]
    assert len(users) == test.num_rows == 943
    assert users[0] == {"user_id": test[0]["user_id"], "history": list(test[0]["history"])}


def test_recommend_to_files_matches_recommend_and_resumes(tiny, tmp_path):
    model, tokenizer = tiny
    out = tmp_path / "out"
    result = recommend_to_files(model, tokenizer, USERS, out, top_k=5, shard_size=2, use_user_tokens=True)
    assert result["num_shards"] == 3 and result["shards_computed"] == [0, 1, 2] and result["shards_reused"] == []
    lines = [json.loads(line) for line in (out / "recommendations.jsonl").read_text().splitlines()]
    items, scores = model.recommend(
        [u["history"] for u in USERS], tokenizer=tokenizer, user_ids=[u["user_id"] for u in USERS], top_k=5,
        return_scores=True,
    )
    assert [line["user_id"] for line in lines] == [u["user_id"] for u in USERS]
    assert [line["items"] for line in lines] == items
    for line, row in zip(lines, scores):
        assert line["scores"] == pytest.approx(row, abs=1e-5)
    # a killed job: one shard and the merged file are gone; the re-run computes only that shard
    merged = (out / "recommendations.jsonl").read_bytes()
    (out / "shard-00001.jsonl").unlink()
    (out / "recommendations.jsonl").unlink()
    again = recommend_to_files(model, tokenizer, USERS, out, top_k=5, shard_size=2, use_user_tokens=True)
    assert again["shards_computed"] == [1] and again["shards_reused"] == [0, 2]
    assert (out / "recommendations.jsonl").read_bytes() == merged
    # the folder of another job is refused, naming what differs
    with pytest.raises(ValueError, match="another job.*top_k"):
        recommend_to_files(model, tokenizer, USERS, out, top_k=3, shard_size=2, use_user_tokens=True)
    with pytest.raises(ValueError, match="another job.*precision"):
        recommend_to_files(model, tokenizer, USERS, out, top_k=5, shard_size=2, use_user_tokens=True, precision="bf16")
    # a folder written before the precision was recorded resumes as "auto"
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["precision"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "shard-00002.jsonl").unlink()
    resumed = recommend_to_files(model, tokenizer, USERS, out, top_k=5, shard_size=2, use_user_tokens=True)
    assert resumed["shards_computed"] == [2] and (out / "recommendations.jsonl").read_bytes() == merged


def test_recommend_to_files_parquet_and_errors(tiny, tmp_path):
    model, tokenizer = tiny
    result = recommend_to_files(
        model, tokenizer, USERS, tmp_path / "pq", top_k=3, shard_size=4, output_format="parquet",
        use_user_tokens=False,
    )
    frame = pd.read_parquet(result["output"])
    assert frame["user_id"].tolist() == [u["user_id"] for u in USERS]
    assert [list(row) for row in frame["items"]] == model.recommend([u["history"] for u in USERS], tokenizer, top_k=3)
    with pytest.raises(ValueError, match=r"unknown item ids \[99999\]"):
        recommend_to_files(model, tokenizer, [{"user_id": 1, "history": [99999]}], tmp_path / "e", top_k=3)
    with pytest.raises(ValueError, match="integer item ids"):
        recommend_to_files(model, tokenizer, [{"user_id": 1, "history": ["B00X"]}], tmp_path / "e", top_k=3)
    with pytest.raises(ValueError, match="output_format"):
        recommend_to_files(model, tokenizer, USERS, tmp_path / "e", output_format="csv")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    # one thread per process in both runs: the same arithmetic, so the same bytes
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_two_processes_write_the_same_bytes_and_metrics_as_one(tiny_folder, shared_data_dir, tmp_path):
    """accelerate launch with 2 CPU processes: byte-identical recommendations and the same evaluation metrics."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_free_port())]
    common = ["--model_name_or_path", str(tiny_folder), "--dataset", "ml-100k", "--data_dir", str(shared_data_dir),
              "--split", "test", "--top_k", "10", "--shard_size", "100", "--use_user_tokens", "true"]
    script = str(REPO_ROOT / "scripts" / "recommend.py")
    _run([sys.executable, script, *common, "--output_dir", str(tmp_path / "one")])
    _run([*launch, script, *common, "--output_dir", str(tmp_path / "two")])
    one = (tmp_path / "one" / "recommendations.jsonl").read_bytes()
    two = (tmp_path / "two" / "recommendations.jsonl").read_bytes()
    assert len(one.splitlines()) == 943 and one == two
    # both processes wrote shards: 10 shards of 100 users, even ones on process 0
    assert sorted(p.name for p in (tmp_path / "two").glob("shard-*.jsonl")) == [
        f"shard-{i:05d}.jsonl" for i in range(10)
    ]

    evaluate = str(REPO_ROOT / "scripts" / "evaluate.py")
    eval_args = ["--model_name_or_path", str(tiny_folder), "--dataset", "ml-100k", "--data_dir",
                 str(shared_data_dir), "--split", "test", "--num_beams", "10", "--batch_size", "64"]
    _run([sys.executable, evaluate, *eval_args, "--output_file", str(tmp_path / "eval1.json")])
    _run([*launch, evaluate, *eval_args, "--output_file", str(tmp_path / "eval2.json")])
    a = json.loads((tmp_path / "eval1.json").read_text())
    b = json.loads((tmp_path / "eval2.json").read_text())
    assert b["hardware"]["world_size"] == 2 and a["hardware"]["world_size"] == 1
    # 943 rows over 2 processes x batch 64 do not split evenly: every user is counted exactly once
    assert a["metrics"]["num_examples"] == b["metrics"]["num_examples"] == 943
    timings = {"runtime", "samples_per_second", "steps_per_second", "model_preparation_time"}
    for key, value in a["metrics"].items():
        if key in timings:
            continue
        assert b["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert {"mrr@10", "coverage@10", "popularity_percentile@10", "seen_recall@10"} <= set(a["metrics"])


@pytest.mark.slow
def test_batch_benchmark_prints_users_per_second(tiny_folder, shared_data_dir, tmp_path, capsys, monkeypatch):
    from hub_helpers import load_script

    script = load_script("benchmarks/batch_recommend.py", monkeypatch)
    rows = script.main(
        ["--model_name_or_path", str(tiny_folder), "--dataset", "ml-100k", "--data_dir", str(shared_data_dir),
         "--output_dir", str(tmp_path / "bench"), "--threads", "2", "--num_beams", "10", "--shard_size", "200"]
    )
    printed = capsys.readouterr().out
    assert [row["num_users"] for row in rows] == [943, 943]
    assert "| 1 process x 2 threads |" in printed and "| 2 processes x 1 threads |" in printed
    assert "byte-identical: True" in printed
