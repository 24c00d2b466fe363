"""Data directory resolution and downloads of the official public data files (GroupLens, McAuley lab)."""

from __future__ import annotations

import os
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm
from transformers.utils import logging

logger = logging.get_logger(__name__)

# Official sources. Module-level so that tests (and mirrors) can point them elsewhere.
GROUPLENS_URLS = {
    "ml-100k": "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
    "ml-1m": "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
}
# The 2014 Amazon review data (McAuley et al.), as linked from https://jmcauley.ucsd.edu/data/amazon/links.html
AMAZON_2014_BASE_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"

DATA_DIR_ENV = "HF_TIGER_DATA_DIR"
CACHE_ENV = "HF_TIGER_CACHE"


def cache_root() -> Path:
    """The hf_tiger cache root: `$HF_TIGER_CACHE`, else `~/.cache/hf_tiger`."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hf_tiger"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """Where the data sets live.

    Args:
        data_dir (`str` or `PathLike`, *optional*): explicit root folder.

    Returns:
        `(root, is_default_cache)`: `data_dir` if given, else `$HF_TIGER_DATA_DIR` if set, else
        `cache_root() / "data"`. `is_default_cache` is True only in the last case, where missing data
        sets are downloaded from their official source by default.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser(), False
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser(), False
    return cache_root() / "data", True


def download_file(url: str, destination: Path, *, desc: str | None = None) -> Path:
    """Download `url` to `destination` atomically (temporary file in the same folder, then `os.replace`).

    Args:
        url (`str`): http(s) or file URL.
        destination (`Path`): final file path; its folder is created.
        desc (`str`, *optional*): progress bar label.

    Returns:
        `Path`: `destination`.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    logger.warning(f"Downloading {url} to {destination}")
    fd, tmp_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = response.headers.get("Content-Length")
            with tqdm(
                total=int(total) if total else None,
                unit="B",
                unit_scale=True,
                desc=desc or destination.name,
            ) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp_name, destination)
    except BaseException as err:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OSError(f"could not download {url} to {destination}: {err}") from err
        raise
    return destination


def download_and_extract_zip(url: str, root: Path, folder_name: str) -> Path:
    """Download a zip archive whose members live under `folder_name/` and extract it to `root/folder_name`.

    Extraction goes to a temporary folder inside `root` first and is moved into place with `os.replace`, so
    a partial download or extraction never leaves a half-filled data folder behind. Members outside
    `folder_name/` (or with absolute / `..` paths) are rejected.

    Returns:
        `Path`: `root / folder_name`.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / folder_name
    if target.exists():
        raise FileExistsError(
            f"{target} exists but is incomplete; remove it (or complete it by hand) and retry the download"
        )
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{folder_name}.") as tmp:
        archive = download_file(url, Path(tmp) / f"{folder_name}.zip")
        extract_to = Path(tmp) / "extracted"
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                parts = Path(member).parts
                if Path(member).is_absolute() or ".." in parts or not parts or parts[0] != folder_name:
                    raise OSError(f"{url}: unexpected archive member {member!r} (expected {folder_name}/...)")
            zf.extractall(extract_to)
        os.replace(extract_to / folder_name, target)
    return target
