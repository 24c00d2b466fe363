"""The "next-item-recommendation" pipeline: histories of catalogue item ids in, ranked items (+ text) out.

This file ships as Hub remote code next to the model (it is copied into saved recommender folders and
named in `config.custom_pipelines`), so it imports only torch, transformers and the standard library.
"""

from __future__ import annotations

import json
import numbers
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import Pipeline
from transformers.utils import cached_file, logging

logger = logging.get_logger(__name__)

ITEMS_FILE_NAME = "items.jsonl"
TASK_NAME = "next-item-recommendation"
PIPELINE_FILE_NAME = "pipeline_tiger.py"


def _is_item_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (str, numbers.Integral)):
        return True
    return isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_floating_point()


def _as_item_id(value: Any) -> int | str:
    if isinstance(value, torch.Tensor):
        return int(value.item())
    return value if isinstance(value, str) else int(value)


def read_item_records(path: str) -> dict[Any, dict[str, Any]]:
    """Read an `items.jsonl` table (one JSON object with an `item_id` per line) into `{item_id: record}`.

    Args:
        path (`str`): the file.

    Returns:
        `dict`: item id (int or str, as stored) -> the whole record.
    """
    records: dict[Any, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                records[record["item_id"]] = record
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(f"{path}: line {line_number}: expected a JSON object with 'item_id' ({err})") from err
    return records


def read_item_texts(path: str) -> dict[Any, str]:
    """Read an `items.jsonl` table (`{"item_id": ..., "text": ...}` per line) into `{item_id: text}`.

    Args:
        path (`str`): the file.

    Returns:
        `dict`: item id (int or str, as stored) -> text. Records without `text` are skipped.
    """
    return {item_id: str(r["text"]) for item_id, r in read_item_records(path).items() if r.get("text") is not None}


def save_pipeline_code(save_directory: str | os.PathLike) -> str:
    """Ship this pipeline with a saved model: copy this file as `pipeline_tiger.py` into `save_directory` and name
    it in the folder's `config.json` (`custom_pipelines`), so `pipeline("next-item-recommendation", model=...,
    trust_remote_code=True)` works where hf_tiger is not installed.

    Args:
        save_directory (`str` or `os.PathLike`): a folder holding the model's `config.json`.

    Returns:
        `str`: the path of the copied file.
    """
    config_path = os.path.join(save_directory, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{config_path} not found: save the model to {save_directory} first")
    target = os.path.join(save_directory, PIPELINE_FILE_NAME)
    with open(__file__, encoding="utf-8") as f:
        _write_atomic(target, f.read())
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    config["custom_pipelines"] = {
        TASK_NAME: {
            "impl": f"{os.path.splitext(PIPELINE_FILE_NAME)[0]}.NextItemRecommendationPipeline",
            "pt": ["AutoModelForSeq2SeqLM"],
            "type": "text",
        }
    }
    _write_atomic(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return target


def _write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` (creating its folder) through a temporary file in that folder and `os.replace`."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class NextItemRecommendationPipeline(Pipeline):
    r"""
    Next-item recommendation with a TIGER model: each input is one user's history of catalogue item ids
    (oldest first), the output is the model's top-k next items, best first, with their beam scores (the
    log-probability of the item's semantic ID divided by its length, as transformers' beam search reports it;
    every semantic ID has the same length, so the ranking is by probability) and their text when the model repo
    ships `items.jsonl`.

    Inputs:
        - one history: a list of item ids (`[12, 7, 431]` or ASIN strings), or a dict
          `{"history": [...], "user_id": ...}` (the user id selects the hashed user token);
        - several: a list of those. Each history gives one list of results.

    Args (at construction or per call):
        top_k (`int`, *optional*, defaults to 10): number of items per history. A catalogue smaller than
            `top_k` gives fewer (all distinct) items.
        num_beams (`int`, *optional*): beam width; defaults to the model's choice (at least `top_k`).
        return_text (`bool`, *optional*, defaults to `True`): add `"text"` when item text is known.
        item_texts (`dict`, *optional*, construction only): item id -> text, overriding the repo's
            `items.jsonl`.
        item_prior (`TransitionPrior`, *optional*, construction only): count prior fused into the search
            (`hf_tiger.TransitionPrior`; `TigerRecommender.pipeline()` passes the repo's own).

    Example:

    ```python
    >>> import hf_tiger  # registers the task
    >>> from transformers import pipeline
    >>> recommender = pipeline("next-item-recommendation", model="org/tiger-beauty")  # doctest: +SKIP
    >>> recommender([12, 7, 431], top_k=3)  # doctest: +SKIP
    [{'item_id': 88, 'score': -1.7, 'text': '...'}, {'item_id': 5, ...}, {'item_id': 913, ...}]
    ```
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(self, *args, item_texts: Mapping[Any, str] | None = None, item_prior: Any = None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.tokenizer is None:
            raise ValueError("the next-item-recommendation pipeline needs the model's SemanticIDTokenizer")
        self._item_texts = dict(item_texts) if item_texts is not None else None
        self.item_prior = item_prior

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs):
        """Save the model and tokenizer, plus this pipeline's code named in `config.json` (see
        [`save_pipeline_code`]); item text given as `item_texts` is written to `items.jsonl`."""
        os.makedirs(save_directory, exist_ok=True)
        self.model.save_pretrained(save_directory, **kwargs)
        self.tokenizer.save_pretrained(save_directory, **kwargs)
        save_pipeline_code(save_directory)
        if self.item_texts:
            lines = (
                json.dumps({"item_id": item_id, "text": text}, ensure_ascii=False) + "\n"
                for item_id, text in self.item_texts.items()
            )
            _write_atomic(os.path.join(save_directory, ITEMS_FILE_NAME), "".join(lines))

    # ------------------------------------------------------------------ item text

    @property
    def item_texts(self) -> dict[Any, str]:
        """Item id -> text: the `item_texts` given, else the model repo's `items.jsonl`, else empty."""
        if self._item_texts is None:
            self._item_texts = {}
            source = getattr(self.model, "name_or_path", None)
            if source:
                path = cached_file(
                    source,
                    ITEMS_FILE_NAME,
                    revision=getattr(self.model.config, "_commit_hash", None),
                    _raise_exceptions_for_missing_entries=False,
                    _raise_exceptions_for_connection_errors=False,
                )
                if path is not None:
                    self._item_texts = read_item_texts(path)
        return self._item_texts

    # ------------------------------------------------------------------ Pipeline API

    def _sanitize_parameters(self, top_k=None, num_beams=None, return_text=None, **kwargs):
        if kwargs:
            raise TypeError(f"unexpected arguments for the {TASK_NAME} pipeline: {sorted(kwargs)}")
        forward = {}
        if top_k is not None:
            if int(top_k) < 1:
                raise ValueError(f"top_k must be >= 1, got {top_k}")
            forward["top_k"] = int(top_k)
        if num_beams is not None:
            forward["num_beams"] = int(num_beams)
        postprocess = {} if return_text is None else {"return_text": bool(return_text)}
        return {}, forward, postprocess

    @staticmethod
    def _normalize_input(example: Any) -> dict[str, Any]:
        if isinstance(example, Mapping):
            if "history" not in example:
                raise ValueError(f"a dict input needs a 'history' key, got keys {sorted(example)}")
            history, user_id = example["history"], example.get("user_id")
        else:
            history, user_id = example, None
        if isinstance(history, torch.Tensor):
            history = history.tolist()
        if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
            raise TypeError(f"a history must be a list of item ids, got {type(history).__name__} {history!r}")
        if len(history) == 0:
            raise ValueError("empty history: give at least one item id")
        bad = [item for item in history if not _is_item_id(item)]
        if bad:
            raise TypeError(f"item ids must be int or str, got {bad[:5]!r}")
        return {"history": [_as_item_id(item) for item in history], "user_id": user_id}

    def __call__(self, inputs, **kwargs):
        """Recommend for one history (returns a list of dicts) or a list of histories (a list of such lists).

        Args:
            inputs (`list` of item ids, `dict`, or a list of those): see the class docstring.
            kwargs: `top_k`, `num_beams`, `return_text`, `batch_size`.
        """
        if isinstance(inputs, (str, bytes)):
            raise TypeError(
                f"got the string {inputs!r}: give a history as a list of item ids, e.g. pipe([{inputs!r}])"
            )
        single = isinstance(inputs, Mapping) or (
            isinstance(inputs, (list, tuple, torch.Tensor)) and len(inputs) > 0 and _is_item_id(inputs[0])
        )
        if isinstance(inputs, (list, tuple)) and len(inputs) == 0:
            raise ValueError("empty input: give a history (list of item ids) or a list of histories")
        examples = [inputs] if single else list(inputs)
        outputs = super().__call__([self._normalize_input(example) for example in examples], **kwargs)
        return outputs[0] if single else outputs

    def preprocess(self, inputs):
        # Unknown item ids are reported by the tokenizer (UnknownItemError naming them) in `_forward`.
        return inputs

    def _forward(self, model_inputs, top_k: int = 10, num_beams: int | None = None):
        histories, user_ids = model_inputs["history"], model_inputs["user_id"]
        batched = isinstance(histories[0], list)  # the DataLoader collates batch_size > 1 into lists
        if not batched:
            histories, user_ids = [histories], [user_ids]
        if all(user_id is None for user_id in user_ids):
            user_ids = None
        items, scores = self.model.recommend(
            histories,
            tokenizer=self.tokenizer,
            user_ids=user_ids,
            top_k=top_k,
            num_beams=num_beams,
            return_scores=True,
            item_prior=self.item_prior,
        )
        scores = [[float(s) for s in row] for row in scores]
        if not batched:
            return {"items": items[0], "scores": scores[0]}
        return {"items": items, "scores": scores}

    def postprocess(self, model_outputs, return_text: bool = True):
        texts = self.item_texts if return_text else {}
        results = []
        for item_id, score in zip(model_outputs["items"], model_outputs["scores"]):
            result = {"item_id": item_id, "score": score}
            if item_id in texts:
                result["text"] = texts[item_id]
            results.append(result)
        return results
