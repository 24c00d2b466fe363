"""`HfArgumentParser` argument groups of the TIGER scripts, and YAML/JSON config files with CLI overrides."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser, Seq2SeqTrainingArguments
from transformers.utils import logging

from ..models.tiger.generation_tiger import cpu_bf16_support

logger = logging.get_logger(__name__)


@dataclass
class DataArguments:
    """Which interactions to train on and how to turn them into examples."""

    dataset: str = field(
        default="ml-100k",
        metadata={"help": "Dataset name for hf_tiger.data.load_sequences, e.g. ml-100k, amazon-p5/beauty."},
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder holding the raw data (default: the reader's own resolution)."}
    )
    max_history: int = field(default=20, metadata={"help": "Most recent history items per example."})
    use_user_tokens: bool = field(default=True, metadata={"help": "Prepend the hashed user token (TIGER does)."})
    tokenized_cache_dir: str | None = field(
        default=None, metadata={"help": "Cache folder of the tokenized splits (default ~/.cache/hf_tiger)."}
    )
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for datasets.map."})
    max_train_prefixes_per_user: int | None = field(
        default=None,
        metadata={"help": "Keep each user's K most recent training prefixes (long-sequence data such as MovieLens)."},
    )
    last_item_rows: bool = field(
        default=False,
        metadata={
            "help": "Also train on each training row cut to its last history item (last item -> target): a short, "
            "cheap row that teaches the item-to-item transition. Rows whose history is one item are not doubled; "
            "evaluation keeps the full histories."
        },
    )
    user_sequences: bool = field(
        default=False,
        metadata={
            "help": "Train on user sequences instead of rows: a user's consecutive training rows become windows of "
            "up to max_history + 1 items, and one encoder pass per window serves all its targets (needs "
            "--causal_encoder; the same rows, each with exactly the encoding its history gets alone, except that "
            "after a sequence's first window a history starts at its window's first item). Batch sizes then "
            "count windows, not rows."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N training rows (smoke tests, debugging)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N validation rows (smoke tests, debugging)."}
    )
    max_test_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N test rows (smoke tests only: not a test result)."}
    )

    def __post_init__(self):
        if self.max_history < 1:
            raise ValueError(f"max_history must be >= 1, got {self.max_history}")
        for name in ("max_train_prefixes_per_user", "max_train_samples", "max_eval_samples", "max_test_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or unset, got {value}")
        if self.user_sequences and self.last_item_rows:
            raise ValueError("user_sequences and last_item_rows cannot be combined: last-item rows are not sequences")


@dataclass
class SemanticIDArguments:
    """Stage 1: item-text embeddings, the RQ-VAE and the semantic-ID tokenizer built from its codes."""

    encoder_name_or_path: str | None = field(
        default=None, metadata={"help": "sentence-transformers encoder (default: hf_tiger.data's default encoder)."}
    )
    item_embeddings_file: str | None = field(
        default=None,
        metadata={"help": "Precomputed item embeddings (hf_tiger.data.save_item_embeddings) instead of encoding."},
    )
    embedding_batch_size: int = field(default=256, metadata={"help": "Batch size of the item-text encoder."})
    embedding_cache_dir: str | None = field(default=None, metadata={"help": "Cache folder of the embeddings."})
    rqvae_name_or_path: str | None = field(
        default=None, metadata={"help": "A trained RQ-VAE to reuse instead of training one."}
    )
    rqvae_num_levels: int = field(default=3, metadata={"help": "RQ-VAE levels (the collision level is extra)."})
    rqvae_codebook_size: int = field(default=256, metadata={"help": "Codes per RQ-VAE level."})
    rqvae_latent_dim: int = field(default=32, metadata={"help": "RQ-VAE latent width."})
    rqvae_hidden_dims: list[int] = field(
        default_factory=lambda: [512, 256, 128], metadata={"help": "RQ-VAE encoder hidden widths."}
    )
    rqvae_quantizer: str = field(default="rotation", metadata={"help": "ste, rotation or gumbel."})
    rqvae_standardize_inputs: bool = field(
        default=False,
        metadata={"help": "Standardize the item embeddings per dimension (zero mean, unit variance) in the RQ-VAE."},
    )
    collaborative_dim: int = field(
        default=0,
        metadata={
            "help": "Width of the collaborative item vectors appended to the text embeddings before the RQ-VAE "
            "(hf_tiger.data.collaborative_item_embeddings: PPMI + SVD of the training rows' item pairs); 0 = text only."
        },
    )
    collaborative_window: int = field(
        default=3, metadata={"help": "Item pairs up to this many positions apart count as co-occurring."}
    )
    collaborative_weight: float = field(
        default=1.0, metadata={"help": "Norm of the collaborative part against the unit-length text embedding."}
    )
    rqvae_num_train_epochs: float = field(default=150, metadata={"help": "RQ-VAE training epochs."})
    rqvae_batch_size: int = field(default=1024, metadata={"help": "RQ-VAE batch size."})
    rqvae_learning_rate: float = field(default=1e-3, metadata={"help": "RQ-VAE learning rate."})
    collision_size: int | None = field(
        default=None, metadata={"help": "Size of the collision level (default: the codebook size)."}
    )
    num_user_buckets: int = field(default=2000, metadata={"help": "Hashed user tokens (TIGER used 2,000)."})

    def __post_init__(self):
        for name in ("embedding_batch_size", "rqvae_num_levels", "rqvae_codebook_size", "rqvae_latent_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_user_buckets < 0:
            raise ValueError(f"num_user_buckets must be >= 0, got {self.num_user_buckets}")
        if self.collaborative_dim < 0 or self.collaborative_window < 1 or self.collaborative_weight < 0:
            raise ValueError(
                "collaborative_dim must be >= 0, collaborative_window >= 1 and collaborative_weight >= 0, got "
                f"{self.collaborative_dim}, {self.collaborative_window}, {self.collaborative_weight}"
            )


@dataclass
class TigerModelArguments:
    """Stage 2: the tokenizer to use and the size of the TIGER encoder-decoder."""

    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved SemanticIDTokenizer (else it is built from stage 1)."}
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Start from a saved TIGER model instead of a fresh one."}
    )
    d_model: int = field(default=128, metadata={"help": "Model width."})
    d_kv: int = field(default=64, metadata={"help": "Width of each attention head."})
    d_ff: int = field(default=1024, metadata={"help": "Feed-forward width."})
    num_layers: int = field(default=4, metadata={"help": "Encoder layers."})
    num_decoder_layers: int | None = field(default=None, metadata={"help": "Decoder layers (default num_layers)."})
    num_heads: int = field(default=6, metadata={"help": "Attention heads."})
    dropout_rate: float | None = field(
        default=None,
        metadata={
            "help": "Dropout: 0.1 for a new model when not given; with --model_name_or_path, the saved model's "
            "unless given (the only size setting a warm start can change)."
        },
    )
    feed_forward_proj: str = field(default="relu", metadata={"help": "T5 feed-forward type (relu, gated-gelu)."})
    attention_dropout_rate: float | None = field(
        default=None,
        metadata={
            "help": "Dropout on attention probabilities (default: dropout_rate, as in T5; 0 = hidden states only, "
            "much cheaper on CPU)."
        },
    )
    causal_encoder: bool = field(
        default=False,
        metadata={
            "help": "Causal encoder self-attention (TigerConfig.causal_encoder): a history prefix's encoding does not "
            "depend on later items, which --user_sequences training needs. T5 and the paper: bidirectional."
        },
    )
    item_embeddings: bool = field(
        default=False,
        metadata={
            "help": "A learned item-ID vector per catalogue item, zero at first, added to the embeddings of the item's "
            "semantic-ID tokens in the encoder input (TigerConfig.num_item_embeddings): room to store what follows "
            "each item. The paper's TIGER reads semantic IDs only (False)."
        },
    )
    item_embedding_scale: float = field(
        default=1.0,
        metadata={"help": "Factor on the item-ID vectors (TigerConfig.item_embedding_scale): s = s x their learning rate."},
    )
    item_embedding_init_std: float = field(
        default=0.0,
        metadata={"help": "Item-ID vectors at initialisation: 0 = zero (the plain TIGER at first), 1 = T5's token scale."},
    )
    prefix_embeddings: bool = field(
        default=False,
        metadata={
            "help": "A learned output vector per semantic-ID prefix of the catalogue (every item included), zero at "
            "first: the logit of a token gains h . v[prefix + token] (TigerConfig.num_prefix_embeddings), so the "
            "decoder scores a next item by a vector of its own, as SASRec does. The paper's TIGER: False."
        },
    )
    prefix_embedding_scale: float = field(
        default=1.0,
        metadata={"help": "Factor on the prefix output vectors (TigerConfig.prefix_embedding_scale)."},
    )
    embedding_init: str = field(
        default="random",
        metadata={
            "help": "Token embeddings of a new model: 'random' (T5's initialisation) or 'rqvae' (the semantic-ID "
            "levels start from the RQ-VAE's codebook vectors, projected to d_model; needs the RQ-VAE: the one stage "
            "1 trains, --rqvae_name_or_path, or an 'rqvae' folder beside the tokenizer)."
        },
    )

    def __post_init__(self):
        if self.embedding_init not in ("random", "rqvae"):
            raise ValueError(f"embedding_init must be 'random' or 'rqvae', got {self.embedding_init!r}")

    def model_sizes(self) -> dict[str, Any]:
        """Keyword arguments for `TigerConfig.from_tokenizer`."""
        sizes = {
            "d_model": self.d_model,
            "d_kv": self.d_kv,
            "d_ff": self.d_ff,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "dropout_rate": 0.1 if self.dropout_rate is None else self.dropout_rate,
            "feed_forward_proj": self.feed_forward_proj,
            "attention_dropout_rate": self.attention_dropout_rate,
            "causal_encoder": self.causal_encoder,
        }
        if self.num_decoder_layers is not None:
            sizes["num_decoder_layers"] = self.num_decoder_layers
        return sizes


@dataclass
class TigerTrainingArguments(Seq2SeqTrainingArguments):
    """`Seq2SeqTrainingArguments` with TIGER's defaults: constrained beam search in evaluation, Recall/NDCG,
    best checkpoint on validation Recall@10, cosine decay after a warmup."""

    output_dir: str | None = field(default="runs/tiger", metadata={"help": "Checkpoints and results.json."})
    metric_ks: list[int] = field(default_factory=lambda: [5, 10], metadata={"help": "Cut-offs K of Recall/NDCG."})
    num_return_sequences: int | None = field(
        default=None, metadata={"help": "Items ranked per user in evaluation (default max(metric_ks))."}
    )
    fast_beam_search: bool = field(
        default=True, metadata={"help": "TIGER's own beam search; False falls back to transformers' beam search."}
    )
    max_train_seconds: float | None = field(
        default=None,
        metadata={"help": "Stop training gracefully after this many seconds (then best checkpoint + test as usual)."},
    )
    prior_weights: list[float] = field(
        default_factory=list,
        metadata={
            "help": "After the plain test evaluation, also score TIGER with the training split's last-item "
            "transition counts fused into its search (hf_tiger.TransitionPrior): each weight is scored on "
            "validation, the best (metric_for_best_model) once on test. Empty: off."
        },
    )
    prior_backoff: float = field(default=1.0, metadata={"help": "Popularity pseudo-count of the count prior."})
    num_sample_recommendations: int = field(
        default=3, metadata={"help": "Test users whose recommendations the pipeline prints with item text."}
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={"help": "A checkpoint folder to resume from, or 'last' (or 'true') for the newest in output_dir."},
    )
    predict_with_generate: bool = field(default=True, metadata={"help": "Evaluate with constrained generation."})
    generation_num_beams: int | None = field(default=20, metadata={"help": "Beams of the constrained search."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate on validation."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint (match eval_strategy)."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Keep the best validation checkpoint."})
    metric_for_best_model: str | None = field(default="recall@10", metadata={"help": "Validation metric."})
    greater_is_better: bool | None = field(default=True, metadata={"help": "Higher metric is better."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (best + last)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate decay after warmup."})
    warmup_steps: float = field(default=0.05, metadata={"help": "Warmup steps (< 1: share of all steps)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    logging_steps: float = field(default=50, metadata={"help": "Log the training loss every N steps."})
    auto_cpu_bf16: bool = field(
        default=True,
        metadata={
            "help": "Training on CPU without --bf16/--fp16: turn on bf16 mixed precision when the CPU computes bf16 "
            "natively (AMX / AVX512-BF16); elsewhere fp32 stays (emulated bf16 is slower) and the log says why."
        },
    )
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "Training sampler: 'group_by_length' (default: batches of similar history length, far less "
            "padding; Beauty's histories average 6.7 of 20 items) or the Trainer's 'random', 'sequential', ..."
        },
    )

    def __post_init__(self):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not self.use_cpu and not _has_accelerator():
            # Without use_cpu, transformers leaves CPU-only processes of torchrun / accelerate launch undistributed
            # (measured: DistributedType.NO with 2 processes): no gradient sync and no metric gathering, silently.
            logger.warning_once("no GPU: the distributed run uses the CPU processes over gloo (use_cpu=True)")
            self.use_cpu = True
            self.ddp_backend = self.ddp_backend or "gloo"
        if self.auto_cpu_bf16 and not (self.bf16 or self.fp16) and (self.use_cpu or not _has_accelerator()):
            native, reason = cpu_bf16_support()
            if native:
                logger.info_once(f"training in bf16 mixed precision (fp32 weights and optimizer): this CPU has {reason}")
                self.bf16 = True
            else:
                logger.info_once(f"training in fp32: this CPU has {reason}")
        if self.bf16 and not self.use_cpu and not _has_accelerator():
            # transformers refuses bf16 without a GPU unless use_cpu is set: bf16 here means CPU autocast
            self.use_cpu = True
        super().__post_init__()
        if any(not float(w) > 0 for w in self.prior_weights) or not self.prior_backoff > 0:
            raise ValueError(
                f"prior_weights must be positive and prior_backoff > 0, got {self.prior_weights} / {self.prior_backoff}"
            )
        if not self.metric_ks or any(int(k) < 1 for k in self.metric_ks):
            raise ValueError(f"metric_ks must be positive integers, got {self.metric_ks}")
        self.metric_ks = sorted({int(k) for k in self.metric_ks})
        if self.num_return_sequences is None:
            self.num_return_sequences = max(self.metric_ks)
        if self.num_return_sequences < max(self.metric_ks):
            raise ValueError(
                f"num_return_sequences={self.num_return_sequences} is below the largest K in metric_ks "
                f"({max(self.metric_ks)})"
            )
        if self.generation_num_beams is None or self.generation_num_beams < self.num_return_sequences:
            raise ValueError(
                f"generation_num_beams={self.generation_num_beams} must be >= num_return_sequences="
                f"{self.num_return_sequences} (beam search returns at most one item per beam)"
            )
        if self.metric_for_best_model is not None:
            name = self.metric_for_best_model.removeprefix("eval_")
            known = {"loss"} | {f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in self.metric_ks}
            if name not in known:
                raise ValueError(f"metric_for_best_model={self.metric_for_best_model!r} is not one of {sorted(known)}")


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


ALL_ARGUMENT_GROUPS = (DataArguments, SemanticIDArguments, TigerModelArguments, TigerTrainingArguments)


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a flat YAML or JSON mapping of argument names to values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of argument names to values, got {type(values).__name__}")
    return values


def parse_args_with_config(
    dataclass_types: Sequence[type] = ALL_ARGUMENT_GROUPS,
    args: Sequence[str] | None = None,
    config: str | os.PathLike | dict | None = None,
) -> tuple:
    """Parse argument groups from an optional YAML/JSON config file, overridden by command-line flags.

    The config file is either `config`, `--config PATH`, or a first positional argument ending in
    `.yaml`, `.yml` or `.json`. Unknown keys in the file are an error naming them.

    Args:
        dataclass_types (`Sequence[type]`): the argument dataclasses.
        args (`Sequence[str]`, *optional*): command-line arguments (default `sys.argv[1:]`).
        config (`str` or `dict`, *optional*): a config file path or an already loaded mapping.

    Returns:
        `tuple`: one instance per dataclass, in order.
    """
    args = list(sys.argv[1:] if args is None else args)
    if args and args[0].endswith((".yaml", ".yml", ".json")) and not args[0].startswith("-"):
        config = config or args.pop(0)
    if "--config" in args:
        index = args.index("--config")
        if index + 1 >= len(args):
            raise ValueError("--config needs a file path")
        config = args[index + 1]
        del args[index : index + 2]
    parser = HfArgumentParser(list(dataclass_types))
    if config is not None:
        values = dict(config) if isinstance(config, dict) else load_config_file(config)
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown keys in config {config if not isinstance(config, dict) else ''}: {unknown}")
        parser.set_defaults(**values)
    return parser.parse_args_into_dataclasses(args=args)
