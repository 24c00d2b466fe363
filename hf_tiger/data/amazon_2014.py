"""Reader for the raw Amazon 2014 review data (McAuley lab): `reviews_<Category>_5.json.gz` + `meta_<Category>.json.gz`.

It turns the public files into the P5 / TIGER protocol: each user's reviews in time order, k-core filtered
(5 by default; the 5-core files already are), users and items renumbered 1, 2, ... in the P5 way (users in
order of first appearance in the reviews file, items in order of first appearance along those users'
time-ordered sequences). For Beauty this gives the 22,363 users, 12,101 items and 198,502 interactions of
the P5 split.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from transformers.utils import logging

from ._io import DataFormatError, InteractionData, check_item_text, iter_lines, require_file

logger = logging.get_logger(__name__)

# Short names for the categories used in the TIGER paper; any other category is passed through as spelled
# in the file names (e.g. "Cell_Phones_and_Accessories").
CATEGORY_ALIASES = {
    "beauty": "Beauty",
    "sports": "Sports_and_Outdoors",
    "sports_and_outdoors": "Sports_and_Outdoors",
    "toys": "Toys_and_Games",
    "toys_and_games": "Toys_and_Games",
}

_ASIN_PATTERN = re.compile(r"""['"]asin['"]\s*:\s*['"]([^'"]+)['"]""")


def amazon_2014_category(name: str) -> str:
    """The category as spelled in the file names: `"beauty"` -> `"Beauty"`, others unchanged."""
    return CATEGORY_ALIASES.get(name.lower(), name)


def amazon_2014_filenames(category: str) -> tuple[str, str]:
    """`(reviews file, meta file)` names of a category, e.g. `("reviews_Beauty_5.json.gz", "meta_Beauty.json.gz")`."""
    category = amazon_2014_category(category)
    return f"reviews_{category}_5.json.gz", f"meta_{category}.json.gz"


def amazon_2014_item_text(record: dict[str, Any]) -> str:
    """Item text from a meta record: `"title: ...; brand: ...; categories: ...; price: ..."` (fields that are
    absent or empty are left out). These are the fields the TIGER paper embeds."""
    parts = []
    if record.get("title"):
        parts.append(f"title: {record['title']}")
    if record.get("brand"):
        parts.append(f"brand: {record['brand']}")
    if record.get("categories"):
        parts.append(f"categories: {', '.join(record['categories'])}")
    if record.get("price") is not None:
        parts.append(f"price: {record['price']}")
    return "; ".join(parts)


def _flatten_categories(value: Any) -> list[str]:
    """The 2014 meta `categories` is a list of category paths (lists); flatten, keeping first occurrences."""
    seen: dict[str, None] = {}
    for path in value or []:
        for category in path if isinstance(path, list) else [path]:
            category = str(category).strip()
            if category:
                seen.setdefault(category, None)
    return list(seen)


def read_reviews(path: Path) -> tuple[dict[str, list[tuple[int, str]]], dict[str, tuple[Path, int]]]:
    """Parse a reviews file (one JSON object per line with `reviewerID`, `asin`, `unixReviewTime`).

    Returns:
        `(events, first_seen)`: reviewer -> [(time, asin)] in file order (reviewers in order of first
        appearance), and asin -> (path, line of first occurrence).
    """
    events: dict[str, list[tuple[int, str]]] = {}
    first_seen: dict[str, tuple[Path, int]] = {}
    for line_number, line in iter_lines(path):
        try:
            review = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, line_number, f"invalid JSON: {err}") from None
        try:
            user, asin, time = review["reviewerID"], review["asin"], int(review["unixReviewTime"])
        except (KeyError, TypeError, ValueError):
            raise DataFormatError(
                path,
                line_number,
                "expected an object with 'reviewerID', 'asin' and an integer 'unixReviewTime'",
            ) from None
        events.setdefault(str(user), []).append((time, str(asin)))
        first_seen.setdefault(str(asin), (path, line_number))
    return events, first_seen


def k_core(sequences: dict[str, list[str]], k: int) -> dict[str, list[str]]:
    """Iteratively drop users with fewer than `k` interactions and items with fewer than `k` interactions
    until both hold (the "k-core" of the interaction graph). Order is preserved."""
    while True:
        item_counts = Counter(item for sequence in sequences.values() for item in sequence)
        filtered = {}
        for user, sequence in sequences.items():
            kept = [item for item in sequence if item_counts[item] >= k]
            if len(kept) >= k:
                filtered[user] = kept
        if filtered == sequences:
            return filtered
        sequences = filtered


def read_meta(path: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Parse the meta records of the `wanted` asins from a 2014 meta file.

    The 2014 meta files hold one Python-literal dict per line (single quotes), so lines are parsed with
    `ast.literal_eval` (never `eval`); strict JSON lines are accepted too. Only lines whose asin is wanted
    are fully parsed (a meta file covers the whole category, the 5-core only a fraction of it).
    """
    records: dict[str, dict[str, Any]] = {}
    for line_number, line in iter_lines(path):
        match = _ASIN_PATTERN.search(line)
        if match is None:
            raise DataFormatError(path, line_number, f"no 'asin' field in meta line {line[:80]!r}")
        if match.group(1) not in wanted:
            continue
        try:
            record = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise DataFormatError(
                    path, line_number, "not a Python-literal or JSON dict (expected one meta record per line)"
                ) from None
        if not isinstance(record, dict) or "asin" not in record:
            raise DataFormatError(path, line_number, "expected a dict with an 'asin' field")
        price = record.get("price")
        try:
            price = float(price) if price not in (None, "") else None
        except (TypeError, ValueError):
            raise DataFormatError(path, line_number, f"price {price!r} is not a number") from None
        records[str(record["asin"])] = {
            "title": str(record.get("title") or "").strip(),
            "brand": str(record.get("brand") or "").strip(),
            "categories": _flatten_categories(record.get("categories")),
            "price": price,
        }
    return records


def read_amazon_2014(
    folder: str | Path, category: str, *, min_interactions: int = 5, missing_text: str = "raise"
) -> InteractionData:
    """Read `reviews_<Category>_5.json.gz` + `meta_<Category>.json.gz` from `folder` into the P5 protocol.

    Args:
        folder (`str` or `Path`): folder holding both files.
        category (`str`): e.g. `"Beauty"` or the alias `"beauty"` (see `CATEGORY_ALIASES`).
        min_interactions (`int`, defaults to 5): k of the k-core filter (users and items).
        missing_text (`str`, defaults to `"raise"`): an item without a meta record or without any text
            field raises `DataFormatError` naming the reviews file line; `"item_id"` uses the id instead.

    Returns:
        `InteractionData` with 1-based integer user and item ids; item records carry the `asin`, `title`,
        `brand`, `categories` and `price` of the meta file.
    """
    if min_interactions < 1:
        raise ValueError(f"min_interactions must be >= 1, got {min_interactions}")
    folder = Path(folder)
    reviews_name, meta_name = amazon_2014_filenames(category)
    reviews_path = require_file(folder / reviews_name, "Amazon 2014 reviews file")
    meta_path = require_file(folder / meta_name, "Amazon 2014 meta file")
    events, first_seen_asin = read_reviews(reviews_path)
    by_reviewer = {}
    for reviewer, user_events in events.items():
        user_events.sort(key=lambda event: event[0])  # stable: same-second reviews keep file order
        by_reviewer[reviewer] = [asin for _, asin in user_events]
    kept = k_core(by_reviewer, min_interactions)
    if len(kept) < len(by_reviewer):
        logger.info(f"{min_interactions}-core filter kept {len(kept)} of {len(by_reviewer)} users")

    item_ids: dict[str, int] = {}
    sequences: dict[int, list[int]] = {}
    for user_id, (_, asins) in enumerate(kept.items(), 1):
        sequences[user_id] = [item_ids.setdefault(asin, len(item_ids) + 1) for asin in asins]

    meta = read_meta(meta_path, set(item_ids))
    items = []
    for asin, item_id in item_ids.items():
        if asin in meta:
            record = {"item_id": item_id, "asin": asin, **meta[asin]}
            record["text"] = amazon_2014_item_text(record)
            items.append(record)
    first_seen = {item_ids[asin]: first_seen_asin[asin] for asin in item_ids}
    items = check_item_text(sequences, items, first_seen, meta_path, missing_text)
    asin_of = {item_id: asin for asin, item_id in item_ids.items()}
    for record in items:  # placeholder records (missing_text="item_id") get the same columns
        record.setdefault("asin", asin_of[record["item_id"]])
        for key, default in (("title", ""), ("brand", ""), ("categories", []), ("price", None)):
            record.setdefault(key, default)
    items.sort(key=lambda record: record["item_id"])
    return InteractionData(sequences=sequences, items=items, files=[reviews_path, meta_path])
