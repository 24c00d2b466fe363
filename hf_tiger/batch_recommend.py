"""Batch recommendation for many users, sharded over processes and machines (`accelerate launch`, `torchrun`).

The users (a JSONL/CSV/parquet file of user id + history, or a `load_sequences` split) are cut into fixed-size
shards of consecutive users. Process `r` of `N` computes shards `r, r + N, r + 2N, ...` and writes each one to its
own file (`shard-00012.jsonl` or `.parquet`, atomically), so no two processes ever write the same file and the
result of a shard does not depend on how many processes there are. Once every process is done, the main process
merges the shards in shard order (= the users' input order) into `recommendations.jsonl` / `.parquet`.

A killed job re-run with the same output folder recomputes only the shards whose file is missing;
`manifest.json` records the job (model, users, settings) and a folder holding another job is refused.

Usage (see `scripts/recommend.py`):

```python
from hf_tiger.batch_recommend import read_users, recommend_to_files

users = read_users("users.jsonl")  # {"user_id": ..., "history": [...]} per line
recommend_to_files(model, tokenizer, users, "out/", top_k=10)  # -> out/recommendations.jsonl
```
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .models.rqvae.training_rqvae import _atomic_write

logger = logging.get_logger(__name__)

__all__ = ["MANIFEST_FILE", "read_users", "recommend_to_files"]

MANIFEST_FILE = "manifest.json"
OUTPUT_FORMATS = ("jsonl", "parquet")


def _coerce_history(value: Any, where: str) -> list[Any]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: history {value!r} is not a JSON list") from error
        else:
            value = text.replace(",", " ").split()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}: history must be a list of item ids, got {type(value).__name__}")
    return list(value)


def read_users(
    source: str | os.PathLike | None = None,
    dataset: str | None = None,
    data_dir: str | None = None,
    split: str = "test",
) -> list[dict[str, Any]]:
    """Users to score as `{"user_id", "history"}` dicts, in file order.

    Args:
        source (`str`, *optional*): a `.jsonl` / `.json` (one object per line), `.csv` or `.parquet` file with the
            columns `user_id` and `history` (a list; in CSV a JSON list or space-separated ids).
        dataset (`str`, *optional*): instead of a file, a `hf_tiger.data.load_sequences` name ...
        data_dir (`str`, *optional*): ... its data root ...
        split (`str`, *optional*, defaults to `"test"`): ... and the split whose rows to score.

    Returns:
        `list[dict]` with `user_id` and `history` (item ids as read; see [`recommend_to_files`] for the id type).
    """
    if (source is None) == (dataset is None):
        raise ValueError("give either a users file (source) or a dataset split, not both")
    if dataset is not None:
        from .data import load_sequences

        splits = load_sequences(dataset, data_dir=data_dir)
        if split not in splits:
            raise ValueError(f"unknown split {split!r}; {dataset} has {list(splits)}")
        rows = splits[split]
        return [{"user_id": u, "history": list(h)} for u, h in zip(rows["user_id"], rows["history"])]
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"users file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        records = []
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}: line {number} is not valid JSON ({error.msg})") from error
    elif suffix in (".csv", ".parquet"):
        import pandas as pd

        if suffix == ".csv":
            frame = pd.read_csv(path, dtype={"user_id": str, "history": str})
        else:
            frame = pd.read_parquet(path)
        records = frame.to_dict(orient="records")
    else:
        raise ValueError(f"{path}: unknown users file type {suffix!r} (use .jsonl, .csv or .parquet)")
    users = []
    for number, record in enumerate(records, 1):
        where = f"{path}: user {number}"
        if not isinstance(record, Mapping) or "history" not in record or "user_id" not in record:
            raise ValueError(f"{where}: expected the fields 'user_id' and 'history'")
        users.append({"user_id": record["user_id"], "history": _coerce_history(record["history"], where)})
    return users


def _coerce_ids(users: Sequence[Mapping[str, Any]], tokenizer) -> list[list[Any]]:
    """Histories with item ids of the catalogue's type (ints when the catalogue uses ints), checked to be known."""
    known = set(tokenizer.item_ids)
    integer_ids = bool(tokenizer.item_ids) and all(isinstance(i, int) for i in tokenizer.item_ids[:100])
    histories = []
    for position, user in enumerate(users):
        history = list(user["history"])
        if integer_ids:
            try:
                history = [int(item) for item in history]
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"user {user['user_id']!r}: this catalogue uses integer item ids, got {history}"
                ) from error
        unknown = [item for item in history if item not in known]
        if unknown:
            raise ValueError(f"user {user['user_id']!r} (row {position}): unknown item ids {unknown[:5]}")
        if not history:
            raise ValueError(f"user {user['user_id']!r} (row {position}): empty history")
        histories.append(history)
    return histories


def _users_fingerprint(users: Sequence[Mapping[str, Any]]) -> str:
    digest = hashlib.sha256()
    for user in users:
        digest.update(json.dumps([str(user["user_id"]), [str(i) for i in user["history"]]]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _write_records(path: Path, records: list[dict[str, Any]], output_format: str) -> None:
    if output_format == "jsonl":

        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                for record in records:
                    f.write(json.dumps(record) + "\n")

    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        def write(tmp):
            table = pa.Table.from_pylist(records) if records else pa.table({})
            pq.write_table(table, tmp)

    _atomic_write(path, write)


def _merge(shard_paths: list[Path], path: Path, output_format: str) -> None:
    if output_format == "jsonl":

        def write(tmp):
            with open(tmp, "wb") as out:
                for shard in shard_paths:
                    out.write(shard.read_bytes())

    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        def write(tmp):
            pq.write_table(pa.concat_tables([pq.read_table(shard) for shard in shard_paths]), tmp)

    _atomic_write(path, write)


_MANIFEST_DEFAULTS = {"precision": "auto"}


def recommend_to_files(
    model,
    tokenizer,
    users: Sequence[Mapping[str, Any]],
    output_dir: str | os.PathLike,
    top_k: int = 10,
    num_beams: int | None = None,
    use_user_tokens: bool = True,
    shard_size: int = 1024,
    batch_size: int | None = None,
    output_format: str = "jsonl",
    model_name: str | None = None,
    precision: str = "auto",
) -> dict[str, Any]:
    """Top-K items for every user, sharded over the processes of `accelerate launch` / `torchrun` (or one process).

    Args:
        model ([`TigerForConditionalGeneration`]), tokenizer ([`SemanticIDTokenizer`]): checked to match.
        users (`Sequence[Mapping]`): `{"user_id", "history"}` per user (see [`read_users`]); item ids are coerced
            to the catalogue's type and must all be known.
        output_dir (`str`): shards, `manifest.json` and the merged `recommendations.<format>`.
        top_k (`int`, *optional*, defaults to 10), num_beams (`int`, *optional*): as in `model.recommend`.
        use_user_tokens (`bool`, *optional*, defaults to `True`): pass the user ids (hashed into user tokens);
            must match how the model was trained.
        shard_size (`int`, *optional*, defaults to 1024): users per shard file (the unit of work and of resuming).
        batch_size (`int`, *optional*): histories per `generate()` call (`model.recommend`'s default).
        output_format (`str`, *optional*, defaults to `"jsonl"`): `"jsonl"` or `"parquet"`; each record holds
            `user_id`, `items` (best first) and `scores`.
        model_name (`str`, *optional*): recorded in the manifest.
        precision (`str`, *optional*, defaults to `"auto"`): `model.recommend`'s (`"auto"` is fp32; `"bf16"` opts in).

    Returns:
        `dict` with `output` (the merged file, on every process), `num_users`, `num_shards`, and this process's
        `shards_computed` / `shards_reused`.
    """
    from accelerate import PartialState
    from tqdm.auto import tqdm

    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}, got {output_format!r}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if not users:
        raise ValueError("no users to recommend to")
    model.check_tokenizer(tokenizer)
    histories = _coerce_ids(users, tokenizer)
    user_ids = [user["user_id"] for user in users]
    state = PartialState()
    model = model.to(state.device)
    output_dir = Path(output_dir)
    num_shards = math.ceil(len(users) / shard_size)
    manifest = {
        "model": model_name,
        "catalogue_fingerprint": tokenizer.catalogue_fingerprint(),
        "users_fingerprint": _users_fingerprint(users),
        "num_users": len(users),
        "shard_size": shard_size,
        "num_shards": num_shards,
        "top_k": top_k,
        "num_beams": num_beams,
        "use_user_tokens": use_user_tokens,
        "output_format": output_format,
        "precision": precision,
    }
    manifest_path = output_dir / MANIFEST_FILE
    # every process checks the folder before anyone writes to it, so all of them refuse another job's folder
    previous = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else None
    if previous is not None:
        # folders written before `precision` was recorded decoded as "auto" does on CPUs without native bf16
        changed = sorted(
            k for k in manifest if k != "model" and previous.get(k, _MANIFEST_DEFAULTS.get(k)) != manifest[k]
        )
        if changed:
            raise ValueError(
                f"{output_dir} holds the output of another job (it differs in {changed}); use a new output folder"
            )
    state.wait_for_everyone()
    if state.is_main_process and previous is None:
        output_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(manifest_path, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=2) + "\n"))
    state.wait_for_everyone()

    def shard_path(index: int) -> Path:
        return output_dir / f"shard-{index:05d}.{output_format}"

    mine = list(range(state.process_index, num_shards, state.num_processes))
    todo = [index for index in mine if not shard_path(index).exists()]
    reused = [index for index in mine if index not in todo]
    if reused:
        logger.info(f"process {state.process_index}: {len(reused)} of {len(mine)} shards already written, reused")
    total = sum(min(shard_size, len(users) - index * shard_size) for index in todo)
    progress = tqdm(
        total=total, desc=f"process {state.process_index}", position=state.process_index, unit="user", leave=True
    )
    for index in todo:
        rows = range(index * shard_size, min((index + 1) * shard_size, len(users)))
        items, scores = model.recommend(
            [histories[i] for i in rows],
            tokenizer=tokenizer,
            user_ids=[user_ids[i] for i in rows] if use_user_tokens else None,
            top_k=top_k,
            num_beams=num_beams,
            return_scores=True,
            batch_size=batch_size,
            precision=precision,
        )
        records = [
            {"user_id": user_ids[i], "items": list(row_items), "scores": [float(s) for s in row_scores]}
            for i, row_items, row_scores in zip(rows, items, scores)
        ]
        _write_records(shard_path(index), records, output_format)
        progress.update(len(rows))
    progress.close()
    state.wait_for_everyone()
    merged = output_dir / f"recommendations.{output_format}"
    if state.is_main_process:
        missing = [index for index in range(num_shards) if not shard_path(index).exists()]
        if missing:
            raise RuntimeError(f"shards {missing[:5]} are missing after every process finished")
        _merge([shard_path(index) for index in range(num_shards)], merged, output_format)
    state.wait_for_everyone()
    return {
        "output": str(merged),
        "num_users": len(users),
        "num_shards": num_shards,
        "shards_computed": todo,
        "shards_reused": reused,
    }
