"""Data set names -> readers: `load_sequences`, `load_items`, `load_user_sequences`, `dataset_statistics`."""

from __future__ import annotations

import os
import statistics
from collections import OrderedDict
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from transformers.utils import logging

from . import download as _downloads
from ._io import InteractionData
from .amazon_2014 import amazon_2014_filenames, read_amazon_2014
from .amazon_p5 import ITEM_TEXT_FILE, SEQUENCES_FILE, read_amazon_p5
from .generic import find_generic_files, read_interactions
from .movielens import read_ml_1m, read_ml_100k
from .splits import leave_one_out

logger = logging.get_logger(__name__)

_MOVIELENS = {
    "ml-100k": (read_ml_100k, ("u.data", "u.item")),
    "ml-1m": (read_ml_1m, ("ratings.dat", "movies.dat")),
}

DATASET_NAMES = (
    "amazon-p5/<folder>  (e.g. amazon-p5/beauty, amazon-p5/sports: <data_dir>/amazon-p5/<folder>, P5 format)",
    "amazon-2014/<Category>  (raw McAuley-lab 5-core reviews + meta, e.g. amazon-2014/Beauty; downloadable)",
    "ml-100k, ml-1m  (GroupLens formats; downloadable)",
    "generic  (<data_dir>/interactions.csv|jsonl + <data_dir>/items.jsonl)",
    "a path to a folder in any of these formats",
)

_CACHE: OrderedDict[tuple, tuple[tuple, InteractionData]] = OrderedDict()
_CACHE_SIZE = 4


def _download_allowed(download: bool | None, is_default_cache: bool) -> bool:
    return is_default_cache if download is None else download


def _missing_hint(root: Path, is_default_cache: bool) -> str:
    if is_default_cache:
        return f"(default cache {root}; pass download=True or data_dir=...)"
    return "(pass download=True to fetch it from the official source into this folder)"


def _detect_folder_format(folder: Path) -> str:
    if (folder / SEQUENCES_FILE).is_file():
        return "amazon-p5"
    for name, (_, files) in _MOVIELENS.items():
        if (folder / files[0]).is_file():
            return name
    if any((folder / f"interactions.{ext}").is_file() for ext in ("csv", "jsonl")):
        return "generic"
    reviews = sorted(folder.glob("reviews_*_5.json.gz"))
    if len(reviews) == 1:
        return "amazon-2014/" + reviews[0].name[len("reviews_") : -len("_5.json.gz")]
    raise ValueError(f"cannot tell the data format of folder {folder}; known formats: {DATASET_NAMES}")


def _resolve(name: str, data_dir, download: bool | None) -> tuple[str, Any, tuple]:
    """-> (reader id, reader callable, positional args), downloading official files when allowed."""
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}")
    name = os.fspath(name)
    known = name in _MOVIELENS or name == "generic" or name.startswith(("amazon-p5/", "amazon-2014/"))
    if not known:
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ValueError(
                f"unknown dataset {name!r} (and no such folder); known names: {'; '.join(DATASET_NAMES)}"
            )
        kind = _detect_folder_format(folder)
        if kind.startswith("amazon-2014/"):
            return "amazon-2014", read_amazon_2014, (folder, kind.split("/", 1)[1])
        if kind == "generic":
            return "generic", read_interactions, find_generic_files(folder)
        return _resolve_in(kind, folder, False, folder.parent, False)
    root, is_default_cache = _downloads.resolve_data_dir(data_dir)
    return _resolve_in(name, root if name == "generic" else root / name, download, root, is_default_cache)


def _resolve_in(name: str, folder: Path, download: bool | None, root: Path, is_default_cache: bool):
    if name.startswith("amazon-p5"):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"P5 data folder not found: {folder}. P5 splits have no official download URL: point data_dir "
                f"at a folder holding {name}/{SEQUENCES_FILE} and {ITEM_TEXT_FILE}, or use the raw reader "
                "'amazon-2014/<Category>', which downloads the McAuley-lab files and rebuilds the same split."
            )
        return "amazon-p5", read_amazon_p5, (folder,)
    if name in _MOVIELENS:
        reader, files = _MOVIELENS[name]
        if not all((folder / f).is_file() for f in files):
            if _download_allowed(download, is_default_cache):
                _downloads.download_and_extract_zip(_downloads.GROUPLENS_URLS[name], root, name)
            else:
                missing = next(folder / f for f in files if not (folder / f).is_file())
                raise FileNotFoundError(
                    f"{name} file not found: {missing} {_missing_hint(root, is_default_cache)}"
                )
        return name, reader, (folder,)
    if name.startswith("amazon-2014/"):
        category = name.split("/", 1)[1]
        folder = root / "amazon-2014"
        for filename in amazon_2014_filenames(category):
            if (folder / filename).is_file():
                continue
            if not _download_allowed(download, is_default_cache):
                raise FileNotFoundError(
                    f"Amazon 2014 file not found: {folder / filename} {_missing_hint(root, is_default_cache)}"
                )
            _downloads.download_file(_downloads.AMAZON_2014_BASE_URL + filename, folder / filename)
        return "amazon-2014", read_amazon_2014, (folder, category)
    if name == "generic":
        return "generic", read_interactions, find_generic_files(folder)
    raise AssertionError(f"unhandled dataset name {name!r}")


def _signature(files: list[Path]) -> tuple | None:
    """Paths, sizes and modification times of the files a reader used (None if one is gone)."""
    try:
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        return None


def load_interaction_data(
    name: str, data_dir: str | os.PathLike | None = None, *, download: bool | None = None, **reader_kwargs
) -> InteractionData:
    """Read a data set into an `InteractionData` (user sequences + catalogue), cached in-process.

    Args:
        name (`str`): a data set name (see `DATASET_NAMES`) or a path to a data folder.
        data_dir (`str` or `PathLike`, *optional*): root folder holding the data sets; defaults to
            `$HF_TIGER_DATA_DIR`, else `~/.cache/hf_tiger/data` (or `$HF_TIGER_CACHE/data`).
        download (`bool`, *optional*): fetch missing official files (MovieLens, Amazon 2014). Default: only
            into the default cache folder, never into a folder you named.
        reader_kwargs: passed to the reader, e.g. `missing_text="item_id"`, `id_type="str"` (generic),
            `min_interactions=5` (amazon-2014).
    """
    reader_id, reader, args = _resolve(name, data_dir, download)
    key = (reader_id, tuple(str(a) for a in args), tuple(sorted(reader_kwargs.items())))
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == _signature(cached[1].files):
        _CACHE.move_to_end(key)
        return cached[1]
    data = reader(*args, **reader_kwargs)
    signature = _signature(data.files)
    _CACHE[key] = (signature, data)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return data


def load_user_sequences(
    name: str, data_dir: str | os.PathLike | None = None, **kwargs
) -> dict[Any, list[Any]]:
    """User id -> full time-ordered item sequence (before any split). Arguments as `load_interaction_data`."""
    data = load_interaction_data(name, data_dir, **kwargs)
    return {user: list(sequence) for user, sequence in data.sequences.items()}


def load_sequences(
    name: str,
    data_dir: str | os.PathLike | None = None,
    max_history: int = 20,
    *,
    short_sequences: str = "raise",
    **kwargs,
) -> DatasetDict:
    """Leave-one-out train / validation / test splits of a data set (P5 / TIGER protocol).

    Args:
        name (`str`): `"amazon-p5/beauty"`, `"amazon-p5/sports"`, `"ml-100k"`, `"ml-1m"`,
            `"amazon-2014/<Category>"`, `"generic"` or a data folder path (see `DATASET_NAMES`).
        data_dir (`str` or `PathLike`, *optional*): root data folder (see `load_interaction_data`).
        max_history (`int`, defaults to 20): histories keep their most recent `max_history` items.
        short_sequences (`str`, defaults to `"raise"`): users with < 3 interactions: `"raise"` or `"drop"`
            (see `leave_one_out`).
        kwargs: `download` and reader options, see `load_interaction_data`.

    Returns:
        `datasets.DatasetDict` with `train`, `validation`, `test`; columns `user_id`, `history`, `target`.
        Ids keep the source's type (ints for amazon-p5, amazon-2014 and MovieLens).

    Example:

    ```python
    >>> from hf_tiger.data import load_sequences
    >>> splits = load_sequences("ml-100k", data_dir="../shared/data")
    >>> splits["test"].num_rows  # one row per user
    943
    ```
    """
    data = load_interaction_data(name, data_dir, **kwargs)
    return leave_one_out(data.sequences, max_history, short_sequences=short_sequences)


def load_items(name: str, data_dir: str | os.PathLike | None = None, **kwargs) -> Dataset:
    """The item catalogue: `item_id`, `text` (what gets embedded) and the source's raw fields.

    Every item id of `load_sequences(name, ...)` has a row. Row order is the catalogue order (item id order
    for amazon-p5, amazon-2014 and MovieLens; file order for generic data). Arguments as `load_sequences`.

    Example:

    ```python
    >>> from hf_tiger.data import load_items
    >>> items = load_items("amazon-p5/beauty", data_dir="../shared/data")
    >>> items[0]["text"]
    'nail lacquer simmer and shimmer; OPI, Makeup, Nails, Nail Polish'
    ```
    """
    data = load_interaction_data(name, data_dir, **kwargs)
    keys: dict[str, None] = {"item_id": None, "text": None}
    for record in data.items:
        keys.update(dict.fromkeys(record))
    columns = {key: [record.get(key) for record in data.items] for key in keys}
    try:
        return Dataset.from_dict(columns)
    except (TypeError, ValueError) as err:  # e.g. a raw field with mixed types in a generic items file
        raise ValueError(f"cannot build the items table of {name!r}: {err}") from err


def dataset_statistics(
    name: str, data_dir: str | os.PathLike | None = None, max_history: int = 20, **kwargs
) -> dict[str, Any]:
    """Figures of a data set: users, items, interactions, sequence lengths, density and split sizes.

    Arguments as `load_sequences`. Returns a dict of plain numbers (`num_users`, `num_items` (catalogue),
    `num_interacted_items`, `num_interactions`, `min/mean/median/max_sequence_length`, `density`,
    `train_rows`, `validation_rows`, `test_rows`).
    """
    short_sequences = kwargs.pop("short_sequences", "raise")
    data = load_interaction_data(name, data_dir, **kwargs)
    lengths = [len(sequence) for sequence in data.sequences.values()]
    interacted = {item for sequence in data.sequences.values() for item in sequence}
    splits = leave_one_out(data.sequences, max_history, short_sequences=short_sequences)
    num_users, num_items = len(data.sequences), len(data.items)
    return {
        "num_users": num_users,
        "num_items": num_items,
        "num_interacted_items": len(interacted),
        "num_interactions": sum(lengths),
        "min_sequence_length": min(lengths),
        "mean_sequence_length": sum(lengths) / num_users,
        "median_sequence_length": statistics.median(lengths),
        "max_sequence_length": max(lengths),
        "density": sum(lengths) / (num_users * num_items),
        **{f"{split}_rows": splits[split].num_rows for split in ("train", "validation", "test")},
    }
