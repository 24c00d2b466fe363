"""Training the RQ-VAE with the transformers Trainer, and the semantic-ID quality metrics logged at evaluation."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging

from ...machine import PrecisionAlignedTrainerMixin
from .configuration_rqvae import RQVAEConfig
from .modeling_rqvae import RQVAEModel

logger = logging.get_logger(__name__)

METRICS_FILE = "rqvae_metrics.json"
PLOT_FILE = "code_usage.png"

# Defaults tuned on Beauty (12,101 items, MiniLM 384-d embeddings), see scripts/benchmarks/rqvae_beauty.py.
DEFAULT_TRAINING_ARGS: dict[str, Any] = {
    "per_device_train_batch_size": 1024,
    "per_device_eval_batch_size": 8192,
    "learning_rate": 1e-3,
    "num_train_epochs": 50,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "logging_steps": 50,
    "eval_strategy": "steps",
    "eval_steps": 0.2,  # 5 evaluations over the run
    "save_strategy": "no",
    "report_to": "none",
    "seed": 42,
    "dataloader_num_workers": 0,
    "dataloader_pin_memory": False,
    "disable_tqdm": True,
}


def _as_tensor(embeddings, name: str = "embeddings") -> torch.Tensor:
    tensor = embeddings if isinstance(embeddings, torch.Tensor) else torch.as_tensor(np.asarray(embeddings))
    if tensor.dim() != 2:
        raise ValueError(f"{name} must have shape (num_items, dim), got {tuple(tensor.shape)}")
    return tensor.float()


class EmbeddingDataset(torch.utils.data.Dataset):
    """Rows of an embedding matrix as `{"embeddings": row}` examples for the Trainer.

    Args:
        embeddings (`torch.Tensor` of shape `(num_items, dim)`).
    """

    def __init__(self, embeddings: torch.Tensor):
        self.embeddings = embeddings

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"embeddings": self.embeddings[index]}


def collate_embeddings(features: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stacks `{"embeddings": row}` examples into a `(batch_size, dim)` batch."""
    return {"embeddings": torch.stack([f["embeddings"] for f in features])}


def semantic_id_statistics(codes, codebook_size: int | Sequence[int]) -> dict[str, float]:
    r"""
    Quality of a semantic-ID table: code usage and perplexity per level, and collisions of full IDs.

    Args:
        codes (`torch.LongTensor` or array of shape `(num_items, num_levels)`): one semantic ID per item.
        codebook_size (`int` or list of `int`): number of codes per level.

    Returns:
        `dict[str, float]` with, for each level `l`, `code_usage_l{l}` (fraction of the level's codes used by at
        least one item) and `perplexity_l{l}` (exp of the entropy of the level's code distribution; equals the
        codebook size when codes are used uniformly); and `unique_fraction` (share of items whose full ID no other
        item has), `collision_fraction` (1 - unique_fraction), `largest_collision_group` (most items sharing one ID),
        `num_unique_ids`, `num_items`.
    """
    codes = torch.as_tensor(np.asarray(codes) if not isinstance(codes, torch.Tensor) else codes).long().cpu()
    if codes.dim() != 2:
        raise ValueError(f"codes must have shape (num_items, num_levels), got {tuple(codes.shape)}")
    num_items, num_levels = codes.shape
    sizes = [codebook_size] * num_levels if isinstance(codebook_size, int) else list(codebook_size)
    if len(sizes) != num_levels:
        raise ValueError(f"codebook_size has {len(sizes)} entries for {num_levels} levels")
    stats: dict[str, float] = {}
    for level, size in enumerate(sizes):
        counts = torch.bincount(codes[:, level], minlength=size).double()
        stats[f"code_usage_l{level}"] = float((counts > 0).sum()) / size
        probs = counts[counts > 0] / max(num_items, 1)
        stats[f"perplexity_l{level}"] = float(torch.exp(-(probs * probs.log()).sum())) if num_items else 0.0
    if num_items:
        _, inverse, group_sizes = torch.unique(codes, dim=0, return_inverse=True, return_counts=True)
        unique = float((group_sizes[inverse] == 1).double().mean())
        largest = int(group_sizes.max())
        num_ids = int(group_sizes.numel())
    else:
        unique, largest, num_ids = 1.0, 0, 0
    stats.update(
        unique_fraction=unique,
        collision_fraction=1.0 - unique,
        largest_collision_group=largest,
        num_unique_ids=num_ids,
        num_items=num_items,
    )
    return stats


@torch.no_grad()
def compute_rqvae_metrics(model: RQVAEModel, embeddings, batch_size: int = 8192) -> dict[str, float]:
    r"""
    Evaluates an RQ-VAE on a set of items in deterministic mode (nearest codes, no state updates).

    Args:
        model ([`RQVAEModel`]): the model.
        embeddings (`torch.Tensor` or array of shape `(num_items, input_dim)`): the items (usually the catalogue).
        batch_size (`int`, *optional*, defaults to 8192): chunk size.

    Returns:
        `dict[str, float]`: `loss`, `reconstruction_error` (the reconstruction loss), `codebook_loss`,
        `commitment_loss` (all averaged over items, not over chunks) and the keys of [`semantic_id_statistics`].
    """
    embeddings = model.check_embeddings(embeddings)
    was_training = model.training
    model.eval()
    totals = {"loss": 0.0, "reconstruction_error": 0.0, "codebook_loss": 0.0, "commitment_loss": 0.0}
    codes = []
    try:
        for chunk in embeddings.split(batch_size):
            out = model(chunk)
            weight = chunk.shape[0] / max(embeddings.shape[0], 1)
            totals["loss"] += float(out.loss) * weight
            totals["reconstruction_error"] += float(out.reconstruction_loss) * weight
            totals["codebook_loss"] += float(out.codebook_loss) * weight
            totals["commitment_loss"] += float(out.commitment_loss) * weight
            codes.append(out.codes.cpu())
    finally:
        model.train(was_training)
    all_codes = torch.cat(codes) if codes else torch.zeros(0, model.config.num_levels, dtype=torch.long)
    return {**totals, **semantic_id_statistics(all_codes, model.config.codebook_size)}


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def plot_code_usage(
    codes, codebook_size: int, path: str | os.PathLike, title: str | None = None
) -> Path | None:
    r"""
    Saves a PNG with one panel per level: how many items use each code (codes sorted by count), with the
    level's usage fraction and perplexity in the panel title.

    Args:
        codes (`torch.LongTensor` or array of shape `(num_items, num_levels)`).
        codebook_size (`int`): codes per level.
        path (`str` or `os.PathLike`): where to write the PNG (written atomically).
        title (`str`, *optional*): figure title.

    Returns:
        The path written, or `None` when matplotlib is not installed (`pip install hf_tiger[plot]`).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning(
            "matplotlib is not installed: skipping the code-usage plot (pip install 'hf_tiger[plot]')"
        )
        return None
    codes = torch.as_tensor(np.asarray(codes) if not isinstance(codes, torch.Tensor) else codes).long().cpu()
    stats = semantic_id_statistics(codes, codebook_size)
    num_levels = codes.shape[1]
    fig, axes = plt.subplots(1, num_levels, figsize=(4.5 * num_levels, 3.5), squeeze=False)
    for level, ax in enumerate(axes[0]):
        counts = torch.bincount(codes[:, level], minlength=codebook_size).sort(descending=True).values
        ax.bar(range(codebook_size), counts.numpy(), width=1.0, color="tab:blue")
        ax.axhline(codes.shape[0] / codebook_size, color="tab:red", linewidth=1, label="uniform")
        ax.set_title(
            f"level {level}: {stats[f'code_usage_l{level}']:.1%} used, "
            f"perplexity {stats[f'perplexity_l{level}']:.0f}"
        )
        ax.set_xlabel("code (sorted by count)")
        ax.set_ylabel("items")
        ax.legend(loc="upper right")
    fig.suptitle(
        title
        or f"{codes.shape[0]} items, {stats['unique_fraction']:.1%} unique IDs, "
        f"largest collision group {stats['largest_collision_group']}"
    )
    fig.tight_layout()
    path = Path(path)
    _atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path


class RQVAETrainer(PrecisionAlignedTrainerMixin, Trainer):
    r"""
    A [`~transformers.Trainer`] whose evaluation computes [`compute_rqvae_metrics`] on the evaluation items
    (reconstruction error, per-level code usage and perplexity, collisions) instead of only the loss.

    The evaluation dataset must be an [`EmbeddingDataset`].
    """

    def evaluate(
        self,
        eval_dataset: EmbeddingDataset | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if not isinstance(dataset, EmbeddingDataset):
            raise ValueError("RQVAETrainer.evaluate needs an EmbeddingDataset of item embeddings")
        start = time.time()
        raw = compute_rqvae_metrics(
            self.model, dataset.embeddings, batch_size=self.args.per_device_eval_batch_size
        )
        metrics = {f"{metric_key_prefix}_{key}": value for key, value in raw.items()}
        metrics[f"{metric_key_prefix}_runtime"] = round(time.time() - start, 4)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


class RQVAETrainingResult(NamedTuple):
    """What [`train_rqvae`] returns: the trained model and its final metrics (unpacks as `model, metrics`)."""

    model: RQVAEModel
    metrics: dict[str, float]


def make_training_args(output_dir: str | os.PathLike, **overrides) -> TrainingArguments:
    r"""
    `TrainingArguments` for the RQ-VAE: [`DEFAULT_TRAINING_ARGS`] updated with `overrides`.

    Args:
        output_dir (`str` or `os.PathLike`): the Trainer's output directory.
        **overrides: any `TrainingArguments` field.
    """
    return TrainingArguments(output_dir=str(output_dir), **{**DEFAULT_TRAINING_ARGS, **overrides})


def _resolve_config(config: RQVAEConfig | dict | None, input_dim: int) -> RQVAEConfig:
    if config is None:
        return RQVAEConfig(input_dim=input_dim)
    if isinstance(config, dict):
        config = RQVAEConfig(**{"input_dim": input_dim, **config})
    if config.input_dim != input_dim:
        raise ValueError(
            f"wrong embedding width: RQVAEConfig.input_dim={config.input_dim} but the embeddings have width {input_dim}"
        )
    return config


class KMeansInitCallback(TrainerCallback):
    r"""
    K-means-initializes the codebooks on the residuals of all `embeddings` at the first step after the
    autoencoder warm-up (`config.autoencoder_warmup_steps`), i.e. on latents of a warmed-up encoder rather than on
    one batch.

    Args:
        embeddings (`torch.Tensor` of shape `(num_items, input_dim)`): the real items (all of them, or a large
            sample).
        seed (`int`, *optional*, defaults to 0): k-means seed.
    """

    def __init__(self, embeddings: torch.Tensor, seed: int = 0):
        self.embeddings = embeddings
        self.seed = seed
        self.runtime = 0.0

    def maybe_init_(self, model: RQVAEModel) -> None:
        """Runs k-means if the model wants it, is not initialized yet and is past its warm-up."""
        config = model.config
        if not config.kmeans_init or model.is_initialized:
            return
        if int(model.quantizer.step) < config.autoencoder_warmup_steps:
            return
        start = time.time()
        model.kmeans_init_(self.embeddings, seed=self.seed)
        self.runtime += time.time() - start
        logger.info(
            f"k-means initialized {config.num_levels} levels on {self.embeddings.shape[0]} items at training "
            f"step {int(model.quantizer.step)}"
        )

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if isinstance(model, RQVAEModel):
            self.maybe_init_(model)


@dataclass
class _TrainingClock(TrainerCallback):
    """Logs nothing; records when training starts and ends (training time without k-means and saving)."""

    started: float = 0.0
    ended: float = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()

    def on_train_end(self, args, state, control, **kwargs):
        self.ended = time.time()


def train_rqvae(
    embeddings,
    config: RQVAEConfig | dict | None = None,
    training_args: TrainingArguments | dict | None = None,
    eval_embeddings=None,
    output_dir: str | os.PathLike | None = None,
    model: RQVAEModel | None = None,
    save: bool = True,
    plot: bool = True,
    callbacks: list[TrainerCallback] | None = None,
) -> RQVAETrainingResult:
    r"""
    Trains an RQ-VAE on item embeddings with [`RQVAETrainer`] and returns the model and its final metrics.

    Steps: validate the embeddings, build the model, train with the Trainer (the forward returns the loss): the
    first `config.autoencoder_warmup_steps` steps train a plain autoencoder, then [`KMeansInitCallback`]
    k-means-initializes every level on the residuals of all training embeddings
    ([`RQVAEModel.kmeans_init_`]) and quantized training goes on (dead codes are re-seeded), evaluate on
    `eval_embeddings`, then (if `save`) write the model with `save_pretrained`, `rqvae_metrics.json` and
    (if `plot`) `code_usage.png` to `output_dir`.

    Args:
        embeddings (`torch.Tensor` or array of shape `(num_items, input_dim)`): the catalogue's item embeddings.
        config ([`RQVAEConfig`] or `dict`, *optional*): model hyperparameters; a dict is passed to `RQVAEConfig`
            with `input_dim` taken from the embeddings. Defaults to `RQVAEConfig(input_dim=...)`.
        training_args (`TrainingArguments` or `dict`, *optional*): a dict overrides [`DEFAULT_TRAINING_ARGS`]
            (and may hold `output_dir`).
        eval_embeddings (`torch.Tensor` or array, *optional*): items to evaluate on; defaults to `embeddings`
            (semantic IDs are computed for the whole catalogue, so that is what matters).
        output_dir (`str` or `os.PathLike`, *optional*): where to save; defaults to `training_args.output_dir`.
        model ([`RQVAEModel`], *optional*): continue training this model instead of building one (no k-means
            re-initialization if it is already initialized).
        save (`bool`, *optional*, defaults to `True`): save the model, metrics and plot.
        plot (`bool`, *optional*, defaults to `True`): write the code-usage PNG next to the model.
        callbacks (`list[TrainerCallback]`, *optional*): extra Trainer callbacks.

    Returns:
        [`RQVAETrainingResult`] `(model, metrics)`: the trained model (eval mode) and a dict with the keys of
        [`compute_rqvae_metrics`] plus `train_runtime` (seconds in `Trainer.train`), `kmeans_runtime` and
        `train_loss`.

    Example:

    ```python
    >>> from hf_tiger.models.rqvae import train_rqvae
    >>> model, metrics = train_rqvae(item_embeddings, {"quantizer": "rotation"}, {"num_train_epochs": 50},
    ...                              output_dir="runs/rqvae")  # doctest: +SKIP
    >>> codes = model.get_semantic_ids(item_embeddings)  # doctest: +SKIP
    ```
    """
    train = _as_tensor(embeddings)
    evaluation = train if eval_embeddings is None else _as_tensor(eval_embeddings, "eval_embeddings")
    fresh = model is None
    if fresh:
        model = RQVAEModel(_resolve_config(config, train.shape[1]))
    elif config is not None:
        raise ValueError("pass either `config` or `model` to train_rqvae, not both")
    train = model.check_embeddings(train).cpu()
    evaluation = model.check_embeddings(evaluation).cpu()
    if model.config.standardize_inputs and fresh:
        model.set_input_statistics_(train)  # a model passed in keeps the statistics it was trained with

    if training_args is None or isinstance(training_args, dict):
        overrides = dict(training_args or {})
        out = overrides.pop("output_dir", None) or output_dir
        if out is None:
            raise ValueError("train_rqvae needs an output_dir (argument or training_args['output_dir'])")
        training_args = make_training_args(out, **overrides)
    output_dir = Path(output_dir if output_dir is not None else training_args.output_dir)

    kmeans = KMeansInitCallback(train, seed=training_args.seed)
    kmeans.maybe_init_(model)  # no warm-up configured: initialize before the first step

    clock = _TrainingClock()
    trainer = RQVAETrainer(
        model=model,
        args=training_args,
        train_dataset=EmbeddingDataset(train),
        eval_dataset=EmbeddingDataset(evaluation),
        data_collator=collate_embeddings,
        callbacks=[kmeans, clock, *(callbacks or [])],
    )
    train_output = trainer.train()
    model = trainer.model
    if model.config.kmeans_init and not model.is_initialized:
        logger.warning(
            f"training ended within the autoencoder warm-up ({model.config.autoencoder_warmup_steps} steps): "
            "the codebooks were never trained; initializing them with k-means on the final latents"
        )
        model.kmeans_init_(train, seed=training_args.seed)
    model.eval()

    metrics = compute_rqvae_metrics(model, evaluation, batch_size=training_args.per_device_eval_batch_size)
    metrics.update(
        train_runtime=clock.ended - clock.started,
        kmeans_runtime=kmeans.runtime,
        train_loss=float(train_output.training_loss),
        train_steps=int(train_output.global_step),
    )
    if save:
        model.save_pretrained(output_dir)
        _atomic_write(
            output_dir / METRICS_FILE,
            lambda tmp: Path(tmp).write_text(json.dumps(_jsonable(metrics), indent=2) + "\n"),
        )
        if plot:
            plot_code_usage(
                model.get_semantic_ids(evaluation), model.config.codebook_size, output_dir / PLOT_FILE
            )
    return RQVAETrainingResult(model=model, metrics=metrics)


def _jsonable(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in metrics.items()}


__all__ = [
    "DEFAULT_TRAINING_ARGS",
    "EmbeddingDataset",
    "KMeansInitCallback",
    "RQVAETrainer",
    "RQVAETrainingResult",
    "collate_embeddings",
    "compute_rqvae_metrics",
    "make_training_args",
    "plot_code_usage",
    "semantic_id_statistics",
    "train_rqvae",
]
