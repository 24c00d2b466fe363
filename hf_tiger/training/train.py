"""Train TIGER with [`TigerTrainer`]: validation picks the checkpoint, test is evaluated once at the end."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from transformers import TrainerCallback, set_seed
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging

from .arguments import DataArguments, TigerModelArguments, TigerTrainingArguments
from .data import TigerDataCollator, length_order, sort_by_length, tokenize_split
from .trainer import RetrievalMetricsComputer, TigerTrainer

logger = logging.get_logger(__name__)

RESULTS_FILE = "results.json"


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write JSON atomically (temporary file + `os.replace`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(_jsonable(payload), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    return str(value)


def package_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    import accelerate
    import transformers

    import hf_tiger

    return {
        "python": sys.version.split()[0],
        "hf_tiger": hf_tiger.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "accelerate": accelerate.__version__,
    }


def hardware_description(args: TigerTrainingArguments | None = None) -> dict[str, Any]:
    """The device(s) a run used: GPU name or CPU threads, number of processes, mixed precision."""
    info: dict[str, Any] = {"platform": platform.platform(), "cpu_count": os.cpu_count()}
    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available() and (args is None or not args.use_cpu):
        info["device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    else:
        info["device"] = "cpu"
    if args is not None:
        info["world_size"] = args.world_size
        info["bf16"] = args.bf16
        info["fp16"] = args.fp16
        info["tf32"] = args.tf32
    return info


def resolve_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str | os.PathLike) -> str | None:
    """A checkpoint folder to resume from: a path, or `"last"`/`"true"`/`True` for the newest in `output_dir`."""
    if resume_from_checkpoint in (None, False, "", "false", "False", "none", "None"):
        return None
    if resume_from_checkpoint in (True, "true", "True", "last"):
        last = get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None
        if last is None:
            raise ValueError(f"resume_from_checkpoint={resume_from_checkpoint!r} but {output_dir} has no checkpoint")
        return last
    if not Path(resume_from_checkpoint).is_dir():
        raise ValueError(f"checkpoint folder not found: {resume_from_checkpoint}")
    return str(resume_from_checkpoint)


def _first_rows(split: datasets.Dataset, limit: int | None) -> datasets.Dataset:
    return split if limit is None or limit >= split.num_rows else split.select(range(limit))


def _tokenize(
    split: datasets.Dataset, tokenizer, data_args: DataArguments, split_name: str, user_sequences: bool = False
) -> datasets.Dataset:
    """[`tokenize_split`] with the encoding and cache settings of `data_args`."""
    return tokenize_split(
        split,
        tokenizer,
        use_user_tokens=data_args.use_user_tokens,
        cache_dir=data_args.tokenized_cache_dir,
        num_proc=data_args.preprocessing_num_workers,
        split_name=split_name,
        user_sequences=user_sequences,
    )


def most_recent_prefixes(split: datasets.Dataset, per_user: int | None) -> datasets.Dataset:
    """Keep each user's `per_user` last rows (the most recent training prefixes; rows of a user are in time order)."""
    if per_user is None:
        return split
    users = split["user_id"]
    keep, seen = [], {}
    for index in range(len(users) - 1, -1, -1):
        count = seen.get(users[index], 0)
        if count < per_user:
            keep.append(index)
            seen[users[index]] = count + 1
    return split.select(sorted(keep))


def last_item_rows(split: datasets.Dataset) -> datasets.Dataset:
    """Each row whose history has more than one item, cut to its last item (`history[-1:]`, same user and target).

    These are the rows of a first-order transition model: 2 + `num_levels` encoder tokens instead of one item's
    tokens per history item, so they teach the (last item -> target) map at a fraction of a full row's cost.
    """
    longer = split.filter(lambda history: len(history) > 1, input_columns="history", desc="Rows to shorten")
    return longer.map(lambda history: {"history": history[-1:]}, input_columns="history", desc="Last-item rows")


def _item_vector_sizes(tokenizer, model_args: TigerModelArguments) -> dict[str, Any]:
    return {
        "num_item_embeddings": tokenizer.catalogue_size,
        "item_embedding_scale": model_args.item_embedding_scale,
        "item_embedding_init_std": model_args.item_embedding_init_std,
    }


def _prefix_vector_sizes(tokenizer, model_args: TigerModelArguments) -> dict[str, Any]:
    from hf_tiger import TigerConfig
    from hf_tiger.models.tiger.modeling_tiger import semantic_id_prefix_keys

    layout = TigerConfig.from_tokenizer(tokenizer)
    prefixes = semantic_id_prefix_keys(tokenizer.catalogue_token_ids(), layout.level_offsets, layout.codebook_sizes)
    return {"num_prefix_embeddings": int(prefixes.shape[0]), "prefix_embedding_scale": model_args.prefix_embedding_scale}


def build_tiger_model(tokenizer, model_args: TigerModelArguments, rqvae=None):
    """A fresh TIGER sized by `model_args` (or the saved one at `model_name_or_path`) holding the tokenizer's catalogue.

    A warm start keeps the saved architecture; only `dropout_rate`, when given, replaces the saved value, and
    `item_embeddings` / `prefix_embeddings` add those vectors (zero, so the model starts as it was saved) to a model
    saved without them. With
    `model_args.embedding_init == "rqvae"` a new model's semantic-ID embeddings start from `rqvae`'s codebooks
    (see [`TigerForConditionalGeneration.init_semantic_id_embeddings_`]).

    Args:
        tokenizer ([`SemanticIDTokenizer`]): the tokenizer (its catalogue becomes the model's).
        model_args ([`TigerModelArguments`]): sizes, warm start, embedding initialisation.
        rqvae ([`RQVAEModel`] or path, *optional*): the RQ-VAE the tokenizer's codes come from; needed for
            `embedding_init="rqvae"`.
    """
    from hf_tiger import TigerConfig, TigerForConditionalGeneration

    if model_args.model_name_or_path:
        overrides = {} if model_args.dropout_rate is None else {"dropout_rate": model_args.dropout_rate}
        saved = TigerConfig.from_pretrained(model_args.model_name_or_path)
        if getattr(model_args, "item_embeddings", False) and not saved.num_item_embeddings:
            overrides.update(_item_vector_sizes(tokenizer, model_args))  # added to the trained model, zero at first
        if getattr(model_args, "prefix_embeddings", False) and not saved.num_prefix_embeddings:
            overrides.update(_prefix_vector_sizes(tokenizer, model_args))
        model = TigerForConditionalGeneration.from_pretrained(model_args.model_name_or_path, **overrides)
        if model_args.attention_dropout_rate is not None:
            model.set_attention_dropout(model_args.attention_dropout_rate)
        if overrides:
            logger.info(f"warm start from {model_args.model_name_or_path} with dropout_rate={model_args.dropout_rate}")
    else:
        sizes = model_args.model_sizes()
        if getattr(model_args, "item_embeddings", False):
            sizes.update(_item_vector_sizes(tokenizer, model_args))
        if getattr(model_args, "prefix_embeddings", False):
            sizes.update(_prefix_vector_sizes(tokenizer, model_args))
        config = TigerConfig.from_tokenizer(tokenizer, **sizes)
        model = TigerForConditionalGeneration(config)
        if model_args.embedding_init == "rqvae":
            if rqvae is None:
                raise ValueError(
                    "embedding_init='rqvae' needs the RQ-VAE the tokenizer was built from: pass "
                    "--rqvae_name_or_path (or keep the 'rqvae' folder stage 1 writes beside 'tokenizer')"
                )
            if isinstance(rqvae, (str, os.PathLike)):
                from hf_tiger.models.rqvae import RQVAEModel

                rqvae = RQVAEModel.from_pretrained(rqvae)
            levels = model.init_semantic_id_embeddings_(rqvae.quantizer.codebooks)
            logger.info(f"semantic-ID embeddings of {levels} levels initialised from the RQ-VAE codebooks")
    model.set_catalogue(tokenizer)
    return model


def find_rqvae(semantic_args, model_args: TigerModelArguments, stage1=None, output_dir=None) -> str | None:
    """The RQ-VAE folder the tokenizer's codes come from: `--rqvae_name_or_path`; else `output_dir/rqvae` when stage 1
    trained it in this run (`stage1` holds `rqvae_seconds`); else an `rqvae` folder beside a saved tokenizer (the
    layout `run_pipeline` writes: `RUN/tokenizer`, `RUN/rqvae`)."""
    if getattr(semantic_args, "rqvae_name_or_path", None):
        return semantic_args.rqvae_name_or_path
    if stage1 is not None and "rqvae_seconds" in stage1 and output_dir is not None:
        return str(Path(output_dir) / "rqvae")
    if model_args.tokenizer_name_or_path:
        candidate = Path(model_args.tokenizer_name_or_path).parent / "rqvae"
        if (candidate / "config.json").is_file():
            return str(candidate)
    return None


class _History(TrainerCallback):
    """Keeps every validation evaluation (step, epoch, metrics) for results.json."""

    def __init__(self):
        self.evaluations: list[dict[str, Any]] = []

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics:
            self.evaluations.append({"step": state.global_step, "epoch": state.epoch, **metrics})


class _TimeBudget(TrainerCallback):
    """Stops training gracefully once `seconds` have passed (evaluating and saving the last step first)."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.started = time.time()
        self.stopped_at_step: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        if self.stopped_at_step is None and time.time() - self.started > self.seconds:
            logger.warning(f"max_train_seconds={self.seconds:.0f} reached at step {state.global_step}: stopping")
            self.stopped_at_step = state.global_step
            control.should_training_stop = True
            if args.eval_strategy != "no":
                control.should_evaluate = True
            if args.save_strategy != "no":
                control.should_save = True
        return control


def item_popularity_percentiles(tokenizer, train_split) -> dict[tuple[int, ...], float]:
    """Popularity percentile of every catalogue item, keyed by its semantic ID as token ids.

    Popularity is the number of training rows whose target is the item (as `PopularityRecommender` counts it);
    see [`hf_tiger.metrics.popularity_percentiles`]. Items never seen as a training target score at the bottom.
    """
    from ..baselines import PopularityRecommender
    from ..metrics import popularity_percentiles

    counts = PopularityRecommender().fit(train_split).popularity
    catalogue = set(tokenizer.item_ids)
    unknown = [item for item in counts if item not in catalogue]
    if unknown:
        raise ValueError(
            f"{len(unknown)} training targets are not in the tokenizer's catalogue (e.g. {unknown[:3]}): the "
            "tokenizer was built for another catalogue"
        )
    by_item = popularity_percentiles(counts, catalogue=tokenizer.item_ids)
    return {tuple(tokenizer.item_token_ids(item)): value for item, value in by_item.items()}


def retrieval_metrics_computer(tokenizer, train_split, ks) -> RetrievalMetricsComputer:
    """The Trainer's `compute_metrics` with coverage and popularity percentile (from the training split)."""
    return RetrievalMetricsComputer(
        ks,
        catalogue_size=tokenizer.catalogue_size,
        percentiles=item_popularity_percentiles(tokenizer, train_split),
    )


def evaluate_split(
    trainer: TigerTrainer,
    split: datasets.Dataset,
    tokenizer,
    data_args: DataArguments,
    split_name: str,
    limit: int | None = None,
    transitions=None,
    item_prior=None,
) -> dict[str, float]:
    """Tokenize one `load_sequences` split and score it with the trainer's constrained generation.

    Rows are scored in order of history length (less padding); the metrics are means over rows. With
    `transitions` (a [`LastItemTransitionRecommender`] fitted on the training split) the metrics also hold
    Recall@K on the rows whose last-item -> target pair occurs in training and on the rest
    (`seen_recall@K`, `unseen_recall@K`, see [`hf_tiger.baselines.seen_unseen_recall`]). `item_prior` (a
    [`~hf_tiger.TransitionPrior`]) is fused into the search.
    """
    from ..baselines import seen_transitions, seen_unseen_recall
    from ..metrics import ranks_from_semantic_ids

    rows = _first_rows(split, limit)
    with trainer.args.main_process_first(desc=f"tokenize {split_name}"):
        encoded = _tokenize(rows, tokenizer, data_args, split_name)
    order = length_order(encoded)
    # item_prior=None is dropped with the other unset generation settings (TigerTrainer._generation_kwargs)
    output = trainer.predict(encoded.select(order), metric_key_prefix=split_name, item_prior=item_prior)
    metrics = dict(output.metrics)
    if transitions is not None and output.predictions is not None:
        generated = output.predictions[0] if isinstance(output.predictions, (tuple, list)) else output.predictions
        ranks = ranks_from_semantic_ids(np.asarray(generated), np.asarray(output.label_ids))
        seen = np.asarray(seen_transitions(rows, transitions))[order]
        by_seen = seen_unseen_recall(ranks, seen, ks=getattr(trainer.args, "metric_ks", (10,)))
        metrics.update({f"{split_name}_{key}": value for key, value in by_seen.items()})
    return metrics


def fuse_count_prior(trainer, dataset, tokenizer, data_args, training_args, transitions) -> dict[str, Any]:
    """TIGER with the training transition counts fused into its search ([`~hf_tiger.TransitionPrior`]).

    Every weight of `training_args.prior_weights` is scored on validation (the first `max_eval_samples` rows); the
    best by `metric_for_best_model` (recall@10 when that is the loss) is scored once on test.

    Returns:
        `dict` with `weight` (chosen), `backoff`, `validation` (the chosen metric per weight) and `test` (metrics).
    """
    from ..models.tiger.generation_tiger import TransitionPrior

    metric = training_args.metric_for_best_model or "recall@10"
    metric = "recall@10" if metric in ("loss", "eval_loss") else metric.removeprefix("eval_")
    backoff = training_args.prior_backoff
    counts = TransitionPrior.from_recommender(transitions, tokenizer, backoff=backoff)
    by_weight = {}
    for weight in training_args.prior_weights:
        prior = counts.with_settings(weight=weight)
        scored = evaluate_split(
            trainer,
            dataset["validation"],
            tokenizer,
            data_args,
            "validation",
            data_args.max_eval_samples,
            item_prior=prior,
        )
        by_weight[float(weight)] = scored[f"validation_{metric}"]
    weight = max(by_weight, key=lambda w: (by_weight[w], -w))  # ties: the smaller weight
    test = evaluate_split(
        trainer,
        dataset["test"],
        tokenizer,
        data_args,
        "test",
        data_args.max_test_samples,
        transitions,
        counts.with_settings(weight=weight),
    )
    return {
        "weight": weight,
        "backoff": backoff,
        "selected_on": f"validation {metric}",
        "validation": {str(w): value for w, value in by_weight.items()},
        "test": {k.removeprefix("test_"): v for k, v in test.items()},
    }


def train_tiger(
    model,
    tokenizer,
    dataset: Mapping[str, datasets.Dataset],
    training_args: TigerTrainingArguments,
    data_args: DataArguments | None = None,
    callbacks: Sequence[TrainerCallback] | None = None,
    extra_config: Mapping[str, Any] | None = None,
    evaluate_test: bool = True,
) -> dict[str, Any]:
    """Train TIGER on `train`, pick the checkpoint on `validation`, then evaluate `test` once.

    The test split is read only after training has finished (it is not even tokenized before), and its metrics
    are written with the configuration, library versions and hardware to `output_dir/results.json`.

    Args:
        model ([`TigerForConditionalGeneration`]): the model (its catalogue must be the tokenizer's).
        tokenizer ([`SemanticIDTokenizer`]): the semantic-ID tokenizer.
        dataset (`Mapping[str, datasets.Dataset]`): `load_sequences` output with `train`, `validation`, `test`.
        training_args ([`TigerTrainingArguments`]): trainer settings; `resume_from_checkpoint` resumes.
        data_args ([`DataArguments`], *optional*): tokenization settings and row limits.
        callbacks (`Sequence[TrainerCallback]`, *optional*): extra trainer callbacks.
        extra_config (`Mapping`, *optional*): more settings to record in results.json (e.g. stage 1).
        evaluate_test (`bool`, *optional*, defaults to `True`): run the final test evaluation.

    Returns:
        `dict`: the content of results.json (`test`, `best_validation`, `validation_history`, `train`, `config`,
        `versions`, `hardware`), plus the trainer under the key `"trainer"` (not written to disk).
    """
    data_args = data_args or DataArguments()
    started = time.time()
    if tokenizer.catalogue_fingerprint() != model.catalogue_fingerprint():
        raise ValueError(
            "the model's catalogue does not match the tokenizer's (call model.set_catalogue(tokenizer."
            "catalogue_token_ids()) or load the tokenizer saved with the model)"
        )
    if data_args.user_sequences and not getattr(model.config, "causal_encoder", False):
        raise ValueError(
            "user_sequences training shares one encoder pass among the prefixes of a sequence and needs a causal "
            "encoder: build the model with causal_encoder=True (--causal_encoder true)"
        )
    set_seed(training_args.seed)
    with training_args.main_process_first(desc="tokenize train/validation"):
        train = most_recent_prefixes(dataset["train"], data_args.max_train_prefixes_per_user)
        train = _first_rows(train, data_args.max_train_samples)
        encoded = {"train": _tokenize(train, tokenizer, data_args, "train", user_sequences=data_args.user_sequences)}
        if data_args.last_item_rows:
            short = _tokenize(last_item_rows(train), tokenizer, data_args, "train-last-item")
            encoded["train"] = datasets.concatenate_datasets([encoded["train"], short])
        validation = _first_rows(dataset["validation"], data_args.max_eval_samples)
        encoded["validation"] = _tokenize(validation, tokenizer, data_args, "validation")
    history = _History()
    budget = _TimeBudget(training_args.max_train_seconds) if training_args.max_train_seconds else None
    collator = TigerDataCollator(
        pad_token_id=tokenizer.pad_token_id,
        pad_to_multiple_of=8 if (training_args.bf16 or training_args.fp16) else None,
    )
    trainer = TigerTrainer(
        model=model,
        args=training_args,
        train_dataset=encoded["train"],
        eval_dataset=sort_by_length(encoded["validation"]),
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=retrieval_metrics_computer(tokenizer, dataset["train"], training_args.metric_ks),
        callbacks=[history, *([budget] if budget else []), *(callbacks or [])],
    )
    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    if checkpoint is not None:
        logger.info(f"resuming from {checkpoint}")
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model()  # the best validation checkpoint when load_best_model_at_end, with the tokenizer
    trainer.save_state()
    if trainer.is_world_process_zero():
        # The Trainer pickles its arguments next to the weights; results.json keeps them as JSON instead.
        (Path(training_args.output_dir) / "training_args.bin").unlink(missing_ok=True)
    train_seconds = time.time() - started

    results: dict[str, Any] = {"dataset": data_args.dataset}
    if evaluate_test:
        test_started = time.time()
        from ..baselines import LastItemTransitionRecommender

        transitions = LastItemTransitionRecommender().fit(dataset["train"])
        test_metrics = evaluate_split(
            trainer, dataset["test"], tokenizer, data_args, "test", data_args.max_test_samples, transitions
        )
        results["test"] = {k.removeprefix("test_"): v for k, v in test_metrics.items()}
        results["test_seconds"] = time.time() - test_started
        if data_args.max_test_samples is not None:
            results["test_note"] = f"first {data_args.max_test_samples} test rows only: not a full test result"
        if training_args.prior_weights:
            results["prior_fusion"] = fuse_count_prior(
                trainer, dataset, tokenizer, data_args, training_args, transitions
            )
    state = trainer.state
    results["best_validation"] = {
        "metric": training_args.metric_for_best_model,
        "value": state.best_metric,
        "checkpoint": state.best_model_checkpoint,
        "step": state.best_global_step if hasattr(state, "best_global_step") else None,
    }
    results["validation_history"] = history.evaluations
    results["train"] = {
        "epochs": state.epoch,
        "global_step": state.global_step,
        "train_loss": train_output.training_loss,
        "resumed_from": checkpoint,
        "stopped_by_time_budget_at_step": budget.stopped_at_step if budget else None,
        **{k: v for k, v in train_output.metrics.items() if k != "total_flos"},
        "wall_seconds": train_seconds,
    }
    results["config"] = {
        "data": dataclasses.asdict(data_args),
        "model": trainer.model.config.to_dict(),
        "training": training_args.to_dict(),
        **dict(extra_config or {}),
    }
    results["versions"] = package_versions()
    results["hardware"] = hardware_description(training_args)
    if trainer.is_world_process_zero():
        write_json(Path(training_args.output_dir) / RESULTS_FILE, results)
    results["trainer"] = trainer
    return results
