"""Model cards for TIGER recommender repos: `results.json` -> `ModelCardData` (+ eval results) -> README.md."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers.utils import logging

logger = logging.get_logger(__name__)

DEFAULT_TEMPLATE_NAME = "tiger_recommender.md"
DEFAULT_TAGS = (
    "hf_tiger",
    "tiger",
    "recommendation",
    "sequential-recommendation",
    "generative-retrieval",
    "semantic-ids",
    "t5",
)
EVAL_PROTOCOL = (
    "leave-one-out, Recall@K / NDCG@K / MRR@K over the whole catalogue from trie-constrained beam search; "
    "a hit is the exact item (full semantic ID including the collision level); Coverage@K = share of the "
    "catalogue recommended to at least one test user; PopularityPercentile@K = mean training-popularity "
    "percentile of the recommended items (1 = most popular); Seen/UnseenRecall@K = Recall@K on the test rows "
    "whose last-item -> target transition does / does not occur in training"
)

# Friendly names and the TIGER paper's Table 2 test numbers for the data sets it reports.
KNOWN_DATASETS: dict[str, dict[str, Any]] = {
    "amazon-p5/beauty": {
        "pretty_name": "Amazon Beauty (2014 5-core, P5 / TIGER split)",
        "paper": {"Recall@5": 0.0454, "Recall@10": 0.0648, "NDCG@5": 0.0321, "NDCG@10": 0.0384},
    },
    "amazon-p5/sports": {
        "pretty_name": "Amazon Sports and Outdoors (2014 5-core, P5 / TIGER split)",
        "paper": {"Recall@5": 0.0264, "Recall@10": 0.0400, "NDCG@5": 0.0181, "NDCG@10": 0.0225},
    },
    "ml-100k": {"pretty_name": "MovieLens 100K"},
    "ml-1m": {"pretty_name": "MovieLens 1M"},
}

# Card name and model-index metric type of every metric `results.json` may hold (hf_tiger.metrics), in card order.
_METRICS = {
    "recall": ("Recall", "recall"),
    "ndcg": ("NDCG", "ndcg"),
    "mrr": ("MRR", "mrr"),
    "hit_rate": ("HitRate", "hit_rate"),
    "hr": ("HitRate", "hit_rate"),
    "precision": ("Precision", "precision"),
    "map": ("MAP", "map"),
    "seen_recall": ("SeenRecall", "seen_recall"),
    "unseen_recall": ("UnseenRecall", "unseen_recall"),
    "coverage": ("Coverage", "coverage"),
    "popularity_percentile": ("PopularityPercentile", "popularity_percentile"),
}
_METRIC_RE = re.compile(
    r"^(?:(?:test|eval|predict)[_/.])?(" + "|".join(sorted(_METRICS, key=len, reverse=True)) + r")[@_]?(\d+)$",
    re.IGNORECASE,
)
_METRIC_NAMES = {key: name for key, (name, _) in _METRICS.items()}
_METRIC_TYPES = {key: kind for key, (_, kind) in _METRICS.items()}
# card names back to their keys (e.g. "PopularityPercentile@10" -> "popularity_percentile")
_CARD_NAME_KEYS = {name.lower(): key for key, (name, _) in _METRICS.items() if key != "hr"}


def default_template_path() -> Path:
    """The card template: `$HF_TIGER_MODEL_CARD_TEMPLATE`, else `model_cards/tiger_recommender.md` of the
    source checkout, else the copy a wheel install puts in `<prefix>/share/hf_tiger/model_cards/`."""
    env = os.environ.get("HF_TIGER_MODEL_CARD_TEMPLATE")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2] / "model_cards" / DEFAULT_TEMPLATE_NAME
    installed = Path(sys.prefix) / "share" / "hf_tiger" / "model_cards" / DEFAULT_TEMPLATE_NAME
    return installed if not checkout.is_file() and installed.is_file() else checkout


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a `results.json` written by `scripts/train_tiger.py`, with a clear error on bad JSON."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from err
    if not isinstance(results, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(results).__name__}")
    return results


def _metric_key(name: str) -> tuple[str, int] | None:
    match = _METRIC_RE.match(name.strip())
    if match is None:
        return None
    return match.group(1).lower(), int(match.group(2))


def _card_metric_key(name: str) -> tuple[str, int] | None:
    """`("recall", 10)` from a card metric name such as `Recall@10` or `PopularityPercentile@10`."""
    card_name, _, k = name.partition("@")
    return _metric_key(f"{_CARD_NAME_KEYS.get(card_name.lower(), card_name)}@{k}")


def _candidate_metric_dicts(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    candidates = []
    for key in ("test", "test_metrics", "test_results"):
        if isinstance(results.get(key), Mapping):
            candidates.append(results[key])
    metrics = results.get("metrics")
    if isinstance(metrics, Mapping):
        if isinstance(metrics.get("test"), Mapping):
            candidates.append(metrics["test"])
        candidates.append({k: v for k, v in metrics.items() if not str(k).startswith(("eval", "validation"))})
    candidates.append({k: v for k, v in results.items() if str(k).startswith("test")})
    return candidates


def extract_test_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """Find the test-split ranking metrics in a `results.json` payload.

    Looks, in order, at `results["test"]`, `results["test_metrics"]`, `results["test_results"]`,
    `results["metrics"]["test"]`, `results["metrics"]` and top-level `test_*` keys, and keeps keys such as
    `recall@5`, `test_ndcg@10`, `test_recall_5`. Validation metrics are never taken.

    Args:
        results (`Mapping[str, Any]`): the parsed `results.json`.

    Returns:
        `dict[str, float]`: e.g. `{"Recall@5": 0.05, "Recall@10": 0.07, "NDCG@5": 0.03, "NDCG@10": 0.04}`,
        ordered by metric then K. Empty when none is found.
    """
    for candidate in _candidate_metric_dicts(results):
        found: dict[tuple[str, int], float] = {}
        for name, value in candidate.items():
            key = _metric_key(str(name))
            if key is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(float(value)):
                raise ValueError(f"results.json: metric {name!r} is {value}, not a finite number")
            found[key] = float(value)
        if found:
            order = list(_METRIC_NAMES)
            return {
                f"{_METRIC_NAMES[m]}@{k}": v
                for (m, k), v in sorted(found.items(), key=lambda item: (order.index(item[0][0]), item[0][1]))
            }
    return {}


def build_eval_results(
    metrics: Mapping[str, float], dataset_name: str, dataset_pretty_name: str | None = None, split: str = "test"
) -> list[EvalResult]:
    """One `EvalResult` per metric (task "next-item-recommendation") for the card's `model-index`.

    Args:
        metrics (`Mapping[str, float]`): as returned by [`extract_test_metrics`], e.g. `{"Recall@5": 0.05}`.
        dataset_name (`str`): data set id, e.g. `"amazon-p5/beauty"`.
        dataset_pretty_name (`str`, *optional*): display name; defaults to a known name or `dataset_name`.
        split (`str`, *optional*, defaults to `"test"`): the split the metrics were computed on.

    Returns:
        `list[huggingface_hub.EvalResult]`
    """
    pretty = dataset_pretty_name or KNOWN_DATASETS.get(dataset_name, {}).get("pretty_name", dataset_name)
    eval_results = []
    for name, value in metrics.items():
        key = _card_metric_key(name)
        if key is None:
            raise ValueError(f"unrecognised metric name {name!r} (expected e.g. 'Recall@10')")
        metric, k = key
        eval_results.append(
            EvalResult(
                task_type="next-item-recommendation",
                task_name="Sequential next-item recommendation",
                dataset_type=dataset_name,
                dataset_name=pretty,
                dataset_split=split,
                metric_type=_METRIC_TYPES[metric],
                metric_name=name,
                metric_value=round(float(value), 6),
                metric_args={"k": k},
            )
        )
    return eval_results


def _training_config(results: Mapping[str, Any], training_config: Mapping[str, Any] | None) -> dict[str, Any]:
    if training_config is not None:
        return dict(training_config)
    for key in ("config", "training_config", "args", "training_args"):
        if isinstance(results.get(key), Mapping):
            return dict(results[key])
    return {}


def _versions(results: Mapping[str, Any]) -> str:
    versions = results.get("versions")
    if isinstance(versions, Mapping):
        return ", ".join(f"{name} {version}" for name, version in versions.items())
    return ""


def _training_summary(results: Mapping[str, Any]) -> str:
    """One line from results.json: epochs, steps, wall time, hardware, the validation metric used."""
    parts = []
    train = results.get("train") if isinstance(results.get("train"), Mapping) else {}
    if isinstance(train.get("epochs"), (int, float)):
        parts.append(f"{train['epochs']:g} epochs")
    if isinstance(train.get("global_step"), int):
        parts.append(f"{train['global_step']:,} steps")
    if isinstance(train.get("wall_seconds"), (int, float)):
        parts.append(f"{train['wall_seconds'] / 60:.1f} min wall time")
    hardware = results.get("hardware") if isinstance(results.get("hardware"), Mapping) else {}
    if hardware.get("device"):
        device = str(hardware["device"])
        if device == "cpu" and hardware.get("torch_threads"):
            device = f"CPU ({hardware['torch_threads']} threads)"
        if int(hardware.get("world_size") or 1) > 1:
            device = f"{hardware['world_size']} x {device}"
        parts.append(f"on {device}")
    best = results.get("best_validation") if isinstance(results.get("best_validation"), Mapping) else {}
    if best.get("metric") and isinstance(best.get("value"), (int, float)):
        parts.append(f"best checkpoint by validation {best['metric']} = {best['value']:.4f}")
    return ", ".join(parts)


def create_model_card(
    *,
    repo_id: str,
    catalogue_size: int,
    num_levels: int,
    codebook_sizes: list[int],
    num_user_buckets: int,
    model_size: str,
    num_parameters: int,
    sentence_encoder: str | None,
    dataset_name: str | None = None,
    results: Mapping[str, Any] | None = None,
    training_config: Mapping[str, Any] | None = None,
    has_item_text: bool = False,
    example_history: list[Any] | None = None,
    item_id_kind: str = "int",
    max_history: int = 20,
    license: str | None = None,
    tags: list[str] | None = None,
    template_path: str | os.PathLike | None = None,
    has_transition_prior: bool = False,
) -> ModelCard:
    """Fill the `model_cards/` template for a TIGER recommender repo.

    Args:
        repo_id (`str`): Hub repo id (or folder name) shown in the usage snippets.
        catalogue_size (`int`): number of items the model can recommend.
        num_levels (`int`): semantic-ID tokens per item, collision level included.
        codebook_sizes (`list[int]`): codebook size per level, collision level last.
        num_user_buckets (`int`): number of hashed user tokens.
        model_size (`str`): e.g. `"T5, 4+4 layers, d_model 128, 6 heads, d_ff 1024"`.
        num_parameters (`int`): TIGER's parameter count.
        sentence_encoder (`str`, *optional*): name of the item-text encoder.
        dataset_name (`str`, *optional*): data set id (e.g. `"amazon-p5/beauty"`); read from `results` if absent.
        results (`Mapping`, *optional*): the parsed `results.json` (test metrics, config, versions).
        training_config (`Mapping`, *optional*): overrides the config found in `results`.
        has_item_text (`bool`, *optional*, defaults to `False`): whether the repo ships `items.jsonl`.
        example_history (`list`, *optional*): item ids used in the usage snippets.
        item_id_kind (`str`, *optional*, defaults to `"int"`): how item ids look, for the limitations section.
        max_history (`int`, *optional*, defaults to 20): most recent history items the model reads.
        license (`str`, *optional*): license id for the card metadata.
        tags (`list[str]`, *optional*): extra tags.
        template_path (`str` or `os.PathLike`, *optional*): Jinja template; defaults to
            [`default_template_path`].
        has_transition_prior (`bool`, *optional*, defaults to `False`): whether the repo ships
            `transition_prior.safetensors`; with `results["prior_fusion"]` the card shows the fused test figures.

    Returns:
        `huggingface_hub.ModelCard`: `str(card)` is the README.md text; `card.data.eval_results` holds the
        test metrics.
    """
    results = dict(results or {})
    template_path = Path(template_path) if template_path is not None else default_template_path()
    if not template_path.is_file():
        raise FileNotFoundError(
            f"model card template not found at {template_path}; pass template_path= or set "
            "$HF_TIGER_MODEL_CARD_TEMPLATE"
        )
    # JSON round trip: tuples and other non-YAML-safe values become plain lists / strings
    config = json.loads(json.dumps(_training_config(results, training_config), default=str))
    dataset_name = dataset_name or results.get("dataset") or config.get("dataset") or config.get("dataset_name")
    known = KNOWN_DATASETS.get(dataset_name or "", {})
    pretty_name = known.get("pretty_name", dataset_name or "an unnamed data set")
    metrics = extract_test_metrics(results)
    if results and not metrics:
        logger.warning("results were given but no test metrics (e.g. 'test_recall@10') were found in them")
    eval_results = build_eval_results(metrics, dataset_name, pretty_name) if metrics and dataset_name else None
    if metrics and not dataset_name:
        logger.warning("test metrics found but no dataset name: the card's eval_results are left out")
    paper = known.get("paper")
    paper_reference = (
        ", ".join(f"{name} {value:.4f}" for name, value in paper.items()) if paper and metrics else ""
    )

    card_data = ModelCardData(
        library_name="transformers",
        license=license,
        tags=list(dict.fromkeys([*DEFAULT_TAGS, *(tags or [])])),
        datasets=[dataset_name] if dataset_name else None,
        metrics=sorted({_METRIC_TYPES[_card_metric_key(n)[0]] for n in metrics}) or None,
        model_name=repo_id,
        eval_results=eval_results,
    )
    history = example_history if example_history is not None else []
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        dataset_pretty_name=pretty_name,
        catalogue_size=f"{catalogue_size:,}",
        num_levels=num_levels,
        num_code_levels=num_levels - 1,
        codebook_sizes=[str(s) for s in codebook_sizes],
        model_size=model_size,
        num_parameters=f"{num_parameters:,}",
        sentence_encoder=sentence_encoder or "unknown (not recorded)",
        has_item_text=has_item_text,
        metrics_table=list(metrics.items()),
        eval_protocol=EVAL_PROTOCOL,
        paper_reference=paper_reference,
        training_config=yaml.safe_dump(config, sort_keys=False).strip() if config else "",
        versions=_versions(results),
        training_summary=_training_summary(results),
        test_note=str(results.get("test_note") or ""),
        example_history=json.dumps(list(history)),
        item_id_kind=item_id_kind,
        max_history=max_history,
        num_user_buckets=f"{num_user_buckets:,}",
        fusion=_fusion_summary(results, has_prior=has_transition_prior),
    )


def _fusion_summary(results: Mapping[str, Any], has_prior: bool) -> dict[str, Any] | None:
    """The card's "with the count prior" block: the fused test figures a run chose on validation, if any."""
    fusion = results.get("prior_fusion")
    if not fusion or not isinstance(fusion.get("test"), Mapping):
        return None
    keys = [k for k in ("recall@5", "recall@10", "ndcg@5", "ndcg@10") if isinstance(fusion["test"].get(k), (int, float))]
    return {
        "weight": fusion.get("weight"),
        "backoff": fusion.get("backoff"),
        "selected_on": fusion.get("selected_on", "validation"),
        "metrics": [(f"{_METRICS[k.split('@')[0]][0]}@{k.split('@')[1]}", float(fusion["test"][k])) for k in keys],
        "shipped": has_prior,
    }
