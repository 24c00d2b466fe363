"""Shared reader plumbing: the parsed-data container, data errors that name file and line, file helpers."""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers.utils import logging

logger = logging.get_logger(__name__)

MISSING_TEXT_POLICIES = ("raise", "item_id")


class DataFormatError(ValueError):
    """A data file is malformed or inconsistent; the message names the file and, where known, the line.

    Attributes:
        path (`Path`): the offending file.
        line (`int` or `None`): 1-based line number in `path`, when the problem is on one line.
    """

    def __init__(self, path: str | os.PathLike, line: int | None, message: str):
        self.path = Path(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")


@dataclass
class InteractionData:
    """What every reader returns: time-ordered user sequences and the item catalogue.

    Attributes:
        sequences (`dict`): user id -> list of item ids in time order (oldest first), users in source order.
        items (`list[dict]`): the catalogue in its canonical order; each record has `item_id`, `text` and
            the raw fields of the source. Every item of `sequences` has a record with non-empty `text`.
        files (`list[Path]`): the files that were read (used to invalidate the in-process cache).
    """

    sequences: dict[Any, list[Any]]
    items: list[dict[str, Any]]
    files: list[Path] = field(default_factory=list)

    @property
    def num_interactions(self) -> int:
        return sum(len(s) for s in self.sequences.values())


def require_file(path: Path, what: str) -> Path:
    """Return `path` if it is a file, else raise `FileNotFoundError` saying which data file is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def open_binary(path: Path) -> io.BufferedIOBase:
    """Open a data file for reading bytes, transparently decompressing `.gz`."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def iter_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield `(line_number, line)` for every line of a (possibly gzipped) text file.

    Line numbers are 1-based and lines come without their end-of-line. Lines are decoded one at a time so
    that a decoding error is reported as a `DataFormatError` naming the exact line.
    """
    with open_binary(path) as handle:
        for line_number, raw in enumerate(handle, 1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as err:
                raise DataFormatError(path, line_number, f"cannot decode as {encoding}: {err}") from err
            yield line_number, line.rstrip("\r\n")


def check_item_text(
    sequences: dict[Any, list[Any]],
    items: list[dict[str, Any]],
    first_seen: dict[Any, tuple[Path, int]],
    items_file: Path,
    missing_text: str,
) -> list[dict[str, Any]]:
    """Make sure every item of `sequences` has a catalogue record with non-empty text.

    Args:
        sequences (`dict`): user -> item ids.
        items (`list[dict]`): catalogue records (`item_id`, `text`, raw fields).
        first_seen (`dict`): item id -> (interactions file, line) where it first occurs, for error messages.
        items_file (`Path`): the file the item text comes from, for error messages.
        missing_text (`str`): `"raise"` (default policy): raise `DataFormatError` naming the interaction's
            file and line; `"item_id"`: use `str(item_id)` as the text, logged as a warning.

    Returns:
        `list[dict]`: `items`, plus placeholder records appended for items without a record when
        `missing_text="item_id"`.
    """
    if missing_text not in MISSING_TEXT_POLICIES:
        raise ValueError(f"missing_text must be one of {MISSING_TEXT_POLICIES}, got {missing_text!r}")
    by_id = {record["item_id"]: record for record in items}
    missing: list[Any] = []
    for sequence in sequences.values():
        for item_id in sequence:
            record = by_id.get(item_id)
            if record is not None and record["text"]:
                continue
            if missing_text == "raise":
                path, line = first_seen[item_id]
                reason = "has no entry" if record is None else "has an entry with no text"
                raise DataFormatError(
                    path,
                    line,
                    f"item {item_id!r} {reason} in {items_file} (pass missing_text='item_id' to use the id "
                    "as its text instead)",
                )
            if record is None:
                record = {"item_id": item_id, "text": ""}
                by_id[item_id] = record
                items.append(record)
            record["text"] = str(item_id)
            missing.append(item_id)
    if missing:
        logger.warning(
            f"{len(missing)} interacted item(s) have no text in {items_file}; using the item id as their text "
            f"(missing_text='item_id'), e.g. {missing[:5]}"
        )
    return items
