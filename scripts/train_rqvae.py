#!/usr/bin/env python
"""Train the RQ-VAE (TIGER stage 1) on a catalogue's item-text embeddings with the transformers Trainer.

Usage:
    python scripts/train_rqvae.py scripts/configs/rqvae_beauty.yaml --data_dir ../shared/data
    python scripts/train_rqvae.py --dataset ml-100k --data_dir ../shared/data --output_dir runs/rqvae-ml100k
    python scripts/train_rqvae.py CONFIG.yaml --item_embeddings_file emb.safetensors --quantizer ste

Every key of the YAML/JSON config is a flag of RQVAEDataArguments, RQVAEArguments or TrainingArguments;
flags on the command line override it. Writes OUTPUT_DIR/{config.json, model.safetensors, modeling files,
rqvae_metrics.json, code_usage.png} and prints the metrics.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments, set_seed
from transformers.utils import logging

from hf_tiger.models.rqvae import DEFAULT_TRAINING_ARGS, RQVAEConfig, train_rqvae
from hf_tiger.training.arguments import load_config_file, parse_args_with_config

_DEFAULTS = RQVAEConfig()


@dataclass
class RQVAEDataArguments:
    """Which items to embed (or which precomputed embeddings to read)."""

    dataset: str = field(
        default="amazon-p5/beauty", metadata={"help": "Dataset name for hf_tiger.data.load_items."}
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Root folder of the data (e.g. ../shared/data)."}
    )
    item_embeddings_file: str | None = field(
        default=None,
        metadata={"help": "Precomputed embeddings (hf_tiger.data.save_item_embeddings) instead of encoding."},
    )
    encoder_name_or_path: str | None = field(
        default=None,
        metadata={"help": "sentence-transformers encoder (default: hf_tiger.data.default_encoder())."},
    )
    embedding_batch_size: int = field(default=256, metadata={"help": "Batch size of the item-text encoder."})
    embedding_cache_dir: str | None = field(
        default=None, metadata={"help": "Cache folder of the embeddings."}
    )
    num_threads: int | None = field(
        default=None, metadata={"help": "torch intra-op threads (1 is fastest on a busy small machine)."}
    )


@dataclass
class RQVAEArguments:
    """RQVAEConfig fields (input_dim comes from the embeddings); see RQVAEConfig for their meaning."""

    hidden_dims: list[int] = field(
        default_factory=lambda: list(_DEFAULTS.hidden_dims), metadata={"help": "Encoder hidden widths."}
    )
    latent_dim: int = field(default=_DEFAULTS.latent_dim, metadata={"help": "Latent width."})
    codebook_size: int = field(default=_DEFAULTS.codebook_size, metadata={"help": "Codes per level."})
    num_levels: int = field(default=_DEFAULTS.num_levels, metadata={"help": "Residual levels."})
    quantizer: str = field(default=_DEFAULTS.quantizer, metadata={"help": "ste, rotation or gumbel."})
    distance: str = field(default=_DEFAULTS.distance, metadata={"help": "l2 or cosine."})
    activation: str = field(default=_DEFAULTS.activation, metadata={"help": "relu, silu or gelu."})
    dropout: float = field(default=_DEFAULTS.dropout, metadata={"help": "MLP dropout."})
    normalize_inputs: bool = field(
        default=_DEFAULTS.normalize_inputs, metadata={"help": "L2-normalize inputs."}
    )
    beta: float = field(default=_DEFAULTS.beta, metadata={"help": "Commitment weight."})
    codebook_loss_weight: float = field(
        default=_DEFAULTS.codebook_loss_weight, metadata={"help": "Codebook weight."}
    )
    reconstruction_loss: str = field(
        default=_DEFAULTS.reconstruction_loss, metadata={"help": "mse or cosine."}
    )
    kmeans_init: bool = field(
        default=_DEFAULTS.kmeans_init, metadata={"help": "k-means codebook initialization."}
    )
    kmeans_iters: int = field(
        default=_DEFAULTS.kmeans_iters, metadata={"help": "Lloyd iterations per level."}
    )
    autoencoder_warmup_steps: int = field(
        default=_DEFAULTS.autoencoder_warmup_steps,
        metadata={"help": "Plain-autoencoder steps before k-means."},
    )
    dead_code_threshold: int = field(
        default=_DEFAULTS.dead_code_threshold,
        metadata={"help": "Re-seed codes unused this many steps (0: off)."},
    )
    gumbel_temperature: float = field(
        default=_DEFAULTS.gumbel_temperature, metadata={"help": "Start temperature."}
    )
    gumbel_min_temperature: float = field(
        default=_DEFAULTS.gumbel_min_temperature, metadata={"help": "Final temperature."}
    )
    gumbel_anneal_steps: int = field(
        default=_DEFAULTS.gumbel_anneal_steps, metadata={"help": "Annealing steps."}
    )
    gumbel_schedule: str = field(
        default=_DEFAULTS.gumbel_schedule, metadata={"help": "constant, linear, exponential or cosine."}
    )
    gumbel_diversity_weight: float = field(
        default=_DEFAULTS.gumbel_diversity_weight, metadata={"help": "Gumbel diversity term weight."}
    )
    gumbel_hard: bool = field(
        default=_DEFAULTS.gumbel_hard, metadata={"help": "Hard straight-through samples."}
    )


def parse_arguments(args: list[str] | None = None):
    """Parses `[CONFIG.yaml|json] [--flags]`: config values override the defaults, flags override the config."""
    args = list(sys.argv[1:] if args is None else args)
    values = {"output_dir": "runs/rqvae", **DEFAULT_TRAINING_ARGS}
    if args and not args[0].startswith("-") and args[0].endswith((".yaml", ".yml", ".json")):
        values.update(load_config_file(args.pop(0)))
    return parse_args_with_config((RQVAEDataArguments, RQVAEArguments, TrainingArguments), args, config=values)


def load_embeddings(data_args: RQVAEDataArguments) -> tuple[torch.Tensor, list]:
    """The catalogue's embeddings `(num_items, dim)` and item ids, from a file or by encoding item text."""
    from hf_tiger.data import embed_items, load_item_embeddings, load_items

    if data_args.item_embeddings_file:
        embeddings, item_ids = load_item_embeddings(data_args.item_embeddings_file)
    else:
        items = load_items(data_args.dataset, data_dir=data_args.data_dir)
        embeddings = embed_items(
            items,
            data_args.encoder_name_or_path,
            batch_size=data_args.embedding_batch_size,
            cache_dir=data_args.embedding_cache_dir,
        )
        item_ids = list(items["item_id"])
    return torch.as_tensor(embeddings, dtype=torch.float32), item_ids


def main(args: list[str] | None = None) -> dict:
    data_args, rqvae_args, training_args = parse_arguments(args)
    logging.set_verbosity(training_args.get_process_log_level())
    if data_args.num_threads:
        torch.set_num_threads(data_args.num_threads)
    set_seed(training_args.seed)
    embeddings, item_ids = load_embeddings(data_args)
    _, metrics = train_rqvae(
        embeddings,
        dataclasses.asdict(rqvae_args),
        training_args,
        output_dir=training_args.output_dir,
    )
    print(f"RQ-VAE on {len(item_ids)} items ({embeddings.shape[1]}-d) -> {training_args.output_dir}")
    for key, value in metrics.items():
        print(f"  {key:<26} {value:.4f}" if isinstance(value, float) else f"  {key:<26} {value}")
    return metrics


if __name__ == "__main__":
    main()
