"""Reader for P5-format folders (`sequential_data.txt` + `item_text.jsonl`), e.g. the Amazon Beauty/Sports splits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._io import DataFormatError, InteractionData, check_item_text, iter_lines, require_file

SEQUENCES_FILE = "sequential_data.txt"
ITEM_TEXT_FILE = "item_text.jsonl"


def p5_item_text(record: dict[str, Any]) -> str:
    """Item text of a P5 `item_text.jsonl` record: `"{title_keywords}; {', '.join(attributes)}"`.

    Empty parts are left out (Sports has no attributes, one Beauty item has no title keywords), so the text
    never starts or ends with a dangling separator.
    """
    parts = [str(record.get("title_keywords") or "").strip(), ", ".join(record.get("attributes") or [])]
    return "; ".join(part for part in parts if part)


def read_sequences_file(path: Path) -> tuple[dict[int, list[int]], dict[int, tuple[Path, int]]]:
    """Parse `sequential_data.txt`: one line per user, `user_id item_id item_id ...`, items in time order.

    Returns:
        `(sequences, first_seen)`: user -> item ids (ints), and item -> (path, line of first occurrence).
    """
    require_file(path, "P5 sequence file")
    sequences: dict[int, list[int]] = {}
    first_seen: dict[int, tuple[Path, int]] = {}
    for line_number, line in iter_lines(path):
        fields = line.split()
        try:
            ids = [int(field) for field in fields]
        except ValueError:
            raise DataFormatError(
                path, line_number, f"expected 'user_id item_id item_id ...' (integers), got {line[:80]!r}"
            ) from None
        if len(ids) < 2:
            raise DataFormatError(
                path, line_number, f"expected a user id and at least one item, got {line!r}"
            )
        user_id, items = ids[0], ids[1:]
        if user_id in sequences:
            raise DataFormatError(path, line_number, f"user {user_id} appears on more than one line")
        sequences[user_id] = items
        for item_id in items:
            if item_id not in first_seen:
                first_seen[item_id] = (path, line_number)
    return sequences, first_seen


def read_item_text_file(path: Path) -> list[dict[str, Any]]:
    """Parse `item_text.jsonl` into catalogue records sorted by `item_id`, with a `text` column added."""
    require_file(path, "P5 item text file")
    records: dict[int, dict[str, Any]] = {}
    for line_number, line in iter_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, line_number, f"invalid JSON: {err}") from None
        if not isinstance(record, dict) or not isinstance(record.get("item_id"), int):
            raise DataFormatError(path, line_number, "expected a JSON object with an integer 'item_id'")
        if record["item_id"] in records:
            raise DataFormatError(path, line_number, f"duplicate item_id {record['item_id']}")
        attributes = record.get("attributes", [])
        if not isinstance(attributes, list):
            raise DataFormatError(path, line_number, "'attributes' must be a list of strings")
        records[record["item_id"]] = {
            "item_id": record["item_id"],
            "text": p5_item_text(record),
            "asin": str(record.get("asin", "")),
            "title_keywords": str(record.get("title_keywords") or ""),
            "attributes": [str(a) for a in attributes],
        }
    return [records[item_id] for item_id in sorted(records)]


def read_amazon_p5(folder: str | Path, *, missing_text: str = "raise") -> InteractionData:
    """Read a P5-format folder (`sequential_data.txt`, `item_text.jsonl`).

    User and item ids are the 1-based integers of the files. The catalogue is every record of
    `item_text.jsonl`, sorted by id.

    Args:
        folder (`str` or `Path`): e.g. `<data_dir>/amazon-p5/beauty`.
        missing_text (`str`, defaults to `"raise"`): what to do with an interacted item without text; see
            `check_item_text`.

    Raises:
        `FileNotFoundError` for a missing file, `DataFormatError` (file + line) for bad content.
    """
    folder = Path(folder)
    sequences_path, items_path = folder / SEQUENCES_FILE, folder / ITEM_TEXT_FILE
    require_file(sequences_path, "P5 sequence file")
    require_file(items_path, "P5 item text file")
    sequences, first_seen = read_sequences_file(sequences_path)
    items = check_item_text(sequences, read_item_text_file(items_path), first_seen, items_path, missing_text)
    items.sort(key=lambda record: record["item_id"])
    return InteractionData(sequences=sequences, items=items, files=[sequences_path, items_path])
