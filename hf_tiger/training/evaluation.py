"""Score a saved TIGER model on a split, and show ranked recommendations with item text."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers.utils import logging

from ..models.tiger.generation_tiger import TransitionPrior
from .arguments import DataArguments, TigerTrainingArguments
from .data import TigerDataCollator
from .train import evaluate_split, hardware_description, package_versions, retrieval_metrics_computer
from .trainer import TigerTrainer

logger = logging.get_logger(__name__)


def load_model_and_tokenizer(model_name_or_path: str | os.PathLike, tokenizer_name_or_path=None):
    """A saved TIGER model with its tokenizer (from the same folder unless given), checked to match."""
    from hf_tiger import SemanticIDTokenizer, TigerForConditionalGeneration

    model = TigerForConditionalGeneration.from_pretrained(str(model_name_or_path))
    tokenizer = SemanticIDTokenizer.from_pretrained(str(tokenizer_name_or_path or model_name_or_path))
    if tokenizer.catalogue_fingerprint() != model.catalogue_fingerprint():
        raise ValueError(
            f"the tokenizer at {tokenizer_name_or_path or model_name_or_path} does not match the catalogue of the "
            f"model at {model_name_or_path}"
        )
    model.eval()
    return model, tokenizer


def evaluate_saved_model(
    model_name_or_path: str | os.PathLike,
    dataset: str,
    data_dir: str | None = None,
    split: str = "test",
    tokenizer_name_or_path: str | None = None,
    num_beams: int = 20,
    ks: Sequence[int] = (5, 10),
    batch_size: int = 256,
    max_samples: int | None = None,
    use_user_tokens: bool = True,
    training_args: TigerTrainingArguments | None = None,
    prior_weight: float = 0.0,
    prior_backoff: float = 1.0,
) -> dict[str, Any]:
    """Every retrieval metric of a saved model on one split (constrained beam search over its catalogue).

    Recall@K, NDCG@K, MRR@K, catalogue coverage@K, popularity percentile@K (training popularity) and Recall@K on
    the rows whose last-item -> target transition occurs in training and on the rest, as
    [`hf_tiger.metrics.compute_recommendation_metrics`] defines them (the baselines are scored by it too).

    Runs through [`TigerTrainer`], so it also works under `torchrun` / `accelerate launch` with the metrics
    gathered across processes.

    Args:
        model_name_or_path (`str`): a folder written by `save_pretrained` (model + tokenizer).
        dataset (`str`): a `hf_tiger.data.load_sequences` name; data_dir (`str`, *optional*): its data root.
        split (`str`, *optional*, defaults to `"test"`): `validation` or `test`.
        tokenizer_name_or_path (`str`, *optional*): tokenizer folder when not saved with the model.
        num_beams (`int`, *optional*, defaults to 20), ks (`Sequence[int]`, *optional*, defaults to `(5, 10)`).
        batch_size (`int`, *optional*, defaults to 256): users per generation batch (per process).
        max_samples (`int`, *optional*): score only the first rows (debugging; not a full result).
        use_user_tokens (`bool`, *optional*, defaults to `True`): must match how the model was trained.
        training_args ([`TigerTrainingArguments`], *optional*): full control over the evaluation settings.
        prior_weight (`float`, *optional*, defaults to 0): > 0 fuses the training split's last-item transition
            counts into the search ([`~hf_tiger.TransitionPrior`] with this weight and `prior_backoff`): the scores
            are then TIGER + count prior, not TIGER alone.

    Returns:
        `dict` with `metrics` (`recall@5`, `mrr@5`, `coverage@5`, `seen_recall@5`, ...), `split`, `num_examples`,
        `seconds`, `versions`, `hardware`.
    """
    from hf_tiger.data import load_sequences

    model, tokenizer = load_model_and_tokenizer(model_name_or_path, tokenizer_name_or_path)
    sequences = load_sequences(dataset, data_dir=data_dir, max_history=tokenizer.max_history)
    if split not in sequences:
        raise ValueError(f"unknown split {split!r}; {dataset} has {list(sequences)}")
    data_args = DataArguments(dataset=dataset, data_dir=data_dir, use_user_tokens=use_user_tokens)
    with tempfile.TemporaryDirectory() as scratch:
        args = training_args or TigerTrainingArguments(
            output_dir=scratch,
            per_device_eval_batch_size=batch_size,
            generation_num_beams=num_beams,
            metric_ks=list(ks),
            report_to="none",
            eval_strategy="no",
            save_strategy="no",
            load_best_model_at_end=False,
            # score in fp32 as `model.recommend(precision="auto")` decodes, also on a CPU with native bf16
            auto_cpu_bf16=False,
        )
        trainer = TigerTrainer(
            model=model,
            args=args,
            data_collator=TigerDataCollator(pad_token_id=tokenizer.pad_token_id),
            processing_class=tokenizer,
            compute_metrics=retrieval_metrics_computer(tokenizer, sequences["train"], args.metric_ks),
        )
        started = time.time()
        from hf_tiger.baselines import LastItemTransitionRecommender

        transitions = LastItemTransitionRecommender().fit(sequences["train"])
        prior = None
        if prior_weight:
            prior = TransitionPrior.from_recommender(transitions, tokenizer, weight=prior_weight, backoff=prior_backoff)
        metrics = evaluate_split(
            trainer, sequences[split], tokenizer, data_args, split, max_samples, transitions, item_prior=prior
        )
    return {
        "model": str(model_name_or_path),
        "dataset": dataset,
        "split": split,
        "metrics": {k.removeprefix(f"{split}_"): v for k, v in metrics.items()},
        "seconds": time.time() - started,
        "prior": None if prior is None else {"weight": prior.weight, "backoff": prior.backoff},
        "versions": package_versions(),
        "hardware": hardware_description(args),
    }


def item_texts(dataset: str | None, data_dir: str | None = None) -> dict[Any, str]:
    """Item id -> text of a dataset's catalogue (empty without a dataset)."""
    if not dataset:
        return {}
    from hf_tiger.data import load_items

    items = load_items(dataset, data_dir=data_dir)
    return dict(zip(items["item_id"], items["text"]))


def coerce_item_ids(values: Sequence[str], tokenizer) -> list[Any]:
    """Command-line strings to the catalogue's id type (ints when the catalogue uses ints)."""
    known = tokenizer.item_ids
    if known and all(isinstance(i, int) for i in known[:100]):
        try:
            return [int(v) for v in values]
        except ValueError as error:
            raise ValueError(f"this catalogue uses integer item ids; got {list(values)}") from error
    return list(values)


def recommend_with_text(
    model,
    tokenizer,
    histories: Sequence[Sequence[Any]],
    user_ids: Sequence[Any] | None = None,
    top_k: int = 10,
    num_beams: int | None = None,
    texts: dict[Any, str] | None = None,
    precision: str = "auto",
) -> list[list[dict[str, Any]]]:
    """Ranked recommendations per history as `{"rank", "item_id", "score", "text"}` dicts (`model.recommend`)."""
    items, scores = model.recommend(
        [list(h) for h in histories],
        tokenizer=tokenizer,
        user_ids=user_ids,
        top_k=top_k,
        num_beams=num_beams,
        return_scores=True,
        precision=precision,
    )
    texts = texts or {}
    return [
        [
            {"rank": rank + 1, "item_id": item, "score": float(score), "text": texts.get(item)}
            for rank, (item, score) in enumerate(zip(row_items, row_scores))
        ]
        for row_items, row_scores in zip(items, scores)
    ]


def trained_with_user_tokens(model_name_or_path: str | os.PathLike) -> bool | None:
    """Whether the model in a training-run folder was trained with user tokens (its `results.json`), else `None`."""
    import json

    path = Path(model_name_or_path) / "results.json"
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("config", {}).get("data", {}).get("use_user_tokens")
    except (json.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, bool) else None


def default_output_path(model_name_or_path: str | os.PathLike, split: str) -> Path:
    """`<model folder>/eval_<split>.json`."""
    return Path(model_name_or_path) / f"eval_{split}.json"
