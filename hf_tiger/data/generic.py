"""Reader for a user's own data: an interactions CSV/JSONL (`user_id,item_id[,timestamp]`) plus an items JSONL."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._io import DataFormatError, InteractionData, check_item_text, iter_lines, open_binary, require_file

_DECIMAL = re.compile(r"-?[0-9]+")
ID_TYPES = ("auto", "int", "str")
INTERACTIONS_FILES = ("interactions.csv", "interactions.jsonl")
ITEMS_FILE = "items.jsonl"


def _parse_timestamp(value: Any, path: Path, line: int) -> float:
    """A timestamp as seconds: a number (e.g. Unix time) or an ISO-8601 string (naive times read as UTC)."""
    if isinstance(value, bool):
        raise DataFormatError(path, line, f"timestamp {value!r} is not a number or an ISO-8601 date")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise DataFormatError(
                    path, line, f"timestamp {value!r} is not a number or an ISO-8601 date"
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            number = moment.timestamp()
    if not math.isfinite(number):
        raise DataFormatError(path, line, f"timestamp {value!r} is not finite")
    return number


def _check_raw_id(value: Any, column: str, path: Path, line: int) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise DataFormatError(path, line, f"{column} must be a non-empty string or an integer, got {value!r}")
    return value


def _is_int_like(value: Any) -> bool:
    if isinstance(value, int):
        return True
    return isinstance(value, str) and _DECIMAL.fullmatch(value) is not None and str(int(value)) == value


def _converter(values: list[tuple[Any, Path, int]], id_type: str, column: str):
    """The id conversion for one id column: `int` when requested or (for `"auto"`) when every value is an
    integer or a canonical decimal string, else `str`."""
    if id_type == "str":
        return str
    for value, path, line in values:
        if not _is_int_like(value):
            if id_type == "int":
                raise DataFormatError(path, line, f"{column} {value!r} is not an integer (id_type='int')")
            return str
    return int


def _read_interactions_csv(path: Path) -> list[tuple[Any, Any, Any, int]]:
    rows = []
    with io.TextIOWrapper(open_binary(path), encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise DataFormatError(
                path, 1, "empty file (expected a header 'user_id,item_id[,timestamp]')"
            ) from None
        except UnicodeDecodeError as err:
            raise DataFormatError(path, 1, f"cannot decode as utf-8: {err}") from None
        if "user_id" not in header or "item_id" not in header:
            raise DataFormatError(path, 1, f"header must name 'user_id' and 'item_id' columns, got {header}")
        user_col, item_col = header.index("user_id"), header.index("item_id")
        time_col = header.index("timestamp") if "timestamp" in header else None
        try:
            for row in reader:
                line = reader.line_num
                if not row:
                    continue  # csv yields [] only for a blank line
                if len(row) != len(header):
                    raise DataFormatError(
                        path, line, f"expected {len(header)} fields {header}, got {len(row)}: {row}"
                    )
                user, item = row[user_col].strip(), row[item_col].strip()
                if not user or not item:
                    raise DataFormatError(path, line, "empty user_id or item_id")
                rows.append((user, item, None if time_col is None else row[time_col], line))
        except csv.Error as err:
            raise DataFormatError(path, reader.line_num, f"malformed CSV: {err}") from None
        except UnicodeDecodeError as err:
            raise DataFormatError(
                path, reader.line_num + 1, f"cannot decode as utf-8 (near this line): {err}"
            ) from None
    return rows


def _read_interactions_jsonl(path: Path) -> list[tuple[Any, Any, Any, int]]:
    rows = []
    has_time = None
    for line, text in iter_lines(path):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, line, f"invalid JSON: {err}") from None
        if not isinstance(record, dict) or "user_id" not in record or "item_id" not in record:
            raise DataFormatError(path, line, "expected a JSON object with 'user_id' and 'item_id'")
        if has_time is None:
            has_time = "timestamp" in record
        elif has_time != ("timestamp" in record):
            raise DataFormatError(path, line, "'timestamp' must be given on every line or on none")
        user = _check_raw_id(record["user_id"], "user_id", path, line)
        item = _check_raw_id(record["item_id"], "item_id", path, line)
        rows.append((user, item, record.get("timestamp"), line))
    return rows


def generic_item_text(record: dict[str, Any]) -> str:
    """Item text of an items-JSONL record: its `text` field if present, else `"key: value"` of every other
    non-empty scalar or list field, joined with `"; "` (lists joined with `", "`)."""
    if "text" in record and record["text"] is not None:
        return str(record["text"]).strip()
    parts = []
    for key, value in record.items():
        if key == "item_id" or value is None or isinstance(value, dict):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if v not in (None, ""))
        value = str(value).strip()
        if value:
            parts.append(f"{key}: {value}")
    return "; ".join(parts)


def read_interactions(
    interactions_path: str | Path,
    items_path: str | Path,
    *,
    id_type: str = "auto",
    missing_text: str = "raise",
) -> InteractionData:
    """Read a generic interactions file plus an items JSONL.

    Interactions: a CSV with a header naming `user_id`, `item_id` and optionally `timestamp` (other columns
    are ignored), or a JSONL with one `{"user_id": ..., "item_id": ..., "timestamp": ...}` object per line.
    Timestamps are numbers (e.g. Unix seconds) or ISO-8601 strings; each user's interactions are sorted by
    time, ties (and files without timestamps) keep file order. Users come in order of first appearance.

    Items: one JSON object per line with `item_id` and either a `text` field or other fields from which the
    text is built (`generic_item_text`). All items of the file form the catalogue (so it may hold items
    nobody interacted with yet), in file order.

    Args:
        interactions_path (`str` or `Path`): `.csv` or `.jsonl` (optionally `.gz`).
        items_path (`str` or `Path`): items `.jsonl`.
        id_type (`str`, defaults to `"auto"`): `"int"`, `"str"`, or `"auto"`: ints when every id of the
            column (users; items across both files) is an integer or canonical decimal string, else strings.
        missing_text (`str`, defaults to `"raise"`): see `check_item_text`.

    Raises:
        `FileNotFoundError`, or `DataFormatError` naming the file and line of a malformed line, an unknown
        or duplicate item, or an interacted item without text.
    """
    if id_type not in ID_TYPES:
        raise ValueError(f"id_type must be one of {ID_TYPES}, got {id_type!r}")
    interactions_path, items_path = Path(interactions_path), Path(items_path)
    require_file(interactions_path, "interactions file")
    require_file(items_path, "items file")
    suffixes = [s for s in interactions_path.suffixes if s != ".gz"]
    if suffixes[-1:] == [".csv"]:
        rows = _read_interactions_csv(interactions_path)
    elif suffixes[-1:] in ([".jsonl"], [".json"]):
        rows = _read_interactions_jsonl(interactions_path)
    else:
        raise ValueError(f"interactions file must be .csv or .jsonl: {interactions_path}")
    if not rows:
        raise DataFormatError(interactions_path, None, "no interactions")

    item_records = []
    for line, text in iter_lines(items_path):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataFormatError(items_path, line, f"invalid JSON: {err}") from None
        if not isinstance(record, dict) or "item_id" not in record:
            raise DataFormatError(items_path, line, "expected a JSON object with an 'item_id'")
        _check_raw_id(record["item_id"], "item_id", items_path, line)
        item_records.append((record, line))

    to_user = _converter([(u, interactions_path, line) for u, _, _, line in rows], id_type, "user_id")
    to_item = _converter(
        [(i, interactions_path, line) for _, i, _, line in rows]
        + [(r["item_id"], items_path, line) for r, line in item_records],
        id_type,
        "item_id",
    )

    items: dict[Any, dict[str, Any]] = {}
    for record, line in item_records:
        item_id = to_item(record["item_id"])
        if item_id in items:
            raise DataFormatError(items_path, line, f"duplicate item_id {item_id!r}")
        items[item_id] = {**record, "item_id": item_id, "text": generic_item_text(record)}

    events: dict[Any, list[tuple[float, Any]]] = {}
    first_seen: dict[Any, tuple[Path, int]] = {}
    for position, (user, item, timestamp, line) in enumerate(rows):
        time = position if timestamp is None else _parse_timestamp(timestamp, interactions_path, line)
        item_id = to_item(item)
        events.setdefault(to_user(user), []).append((time, item_id))
        first_seen.setdefault(item_id, (interactions_path, line))
    sequences = {}
    for user_id, user_events in events.items():
        user_events.sort(key=lambda event: event[0])
        sequences[user_id] = [item_id for _, item_id in user_events]

    catalogue = check_item_text(sequences, list(items.values()), first_seen, items_path, missing_text)
    return InteractionData(sequences=sequences, items=catalogue, files=[interactions_path, items_path])


def find_generic_files(folder: Path) -> tuple[Path, Path]:
    """`(interactions file, items file)` of a generic data folder (`interactions.csv` or `.jsonl`, `items.jsonl`)."""
    candidates = [folder / name for name in INTERACTIONS_FILES if (folder / name).is_file()]
    if not candidates:
        raise FileNotFoundError(
            f"no interactions file in {folder} (expected one of {', '.join(INTERACTIONS_FILES)})"
        )
    if len(candidates) > 1:
        raise ValueError(f"both {candidates[0].name} and {candidates[1].name} in {folder}: keep one")
    return candidates[0], require_file(folder / ITEMS_FILE, "items file")
