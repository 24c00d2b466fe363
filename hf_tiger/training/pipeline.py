"""The whole TIGER job in one call: embeddings -> RQ-VAE -> tokenizer -> TIGER -> test metrics -> examples."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

from ..baselines import baseline_metrics
from .arguments import (
    ALL_ARGUMENT_GROUPS,
    DataArguments,
    SemanticIDArguments,
    TigerModelArguments,
    TigerTrainingArguments,
    parse_args_with_config,
)
from .train import build_tiger_model, find_rqvae, train_tiger, write_json

logger = logging.get_logger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "scripts" / "configs"
DEFAULT_CONFIGS = {
    "ml-100k": "tiger_ml100k_small.yaml",
    "amazon-p5/beauty": "tiger_beauty_paper.yaml",
}


def semantic_id_statistics(tokenizer, code_levels: int) -> dict[str, Any]:
    """Share of items whose RQ-VAE codes (without the collision level) are unique, and the largest group."""
    groups = Counter(tokenizer.semantic_id(item)[:code_levels] for item in tokenizer.item_ids)
    num_items = len(tokenizer.item_ids)
    unique = sum(1 for size in groups.values() if size == 1)
    return {
        "num_items": num_items,
        "unique_share": unique / max(num_items, 1),
        "largest_collision_group": max(groups.values(), default=0),
        "distinct_prefixes": len(groups),
    }


def build_semantic_ids(
    items,
    semantic_args: SemanticIDArguments,
    data_args: DataArguments,
    output_dir: str | Path,
    seed: int = 42,
    train=None,
) -> tuple[Any, dict[str, Any]]:
    """Stage 1: embed item text, train (or load) the RQ-VAE, and build the semantic-ID tokenizer.

    Saves the RQ-VAE to `output_dir/rqvae` and the tokenizer to `output_dir/tokenizer`. With
    `semantic_args.collaborative_dim > 0` the RQ-VAE codes the text embedding and a collaborative vector per item
    built from the training rows (`hf_tiger.data.collaborative_item_embeddings`).

    Args:
        items (`datasets.Dataset`): `load_items` output (`item_id`, `text`).
        semantic_args ([`SemanticIDArguments`]): encoder, RQ-VAE and tokenizer settings.
        data_args ([`DataArguments`]): `max_history` for the tokenizer.
        output_dir (`str` or `Path`): run folder.
        seed (`int`, *optional*, defaults to 42): RQ-VAE seed.
        train (`datasets.Dataset`, *optional*): the training rows (`history`, `target`); needed only for the
            collaborative vectors. Never pass validation or test rows: their targets would leak into the IDs.

    Returns:
        `(tokenizer, info)`: the [`SemanticIDTokenizer`] and a dict of timings and statistics.
    """
    from hf_tiger.data import default_encoder, embed_items, load_item_embeddings
    from hf_tiger.models.rqvae import RQVAEModel, train_rqvae
    from hf_tiger.models.tiger import SemanticIDTokenizer

    output_dir = Path(output_dir)
    info: dict[str, Any] = {}
    started = time.time()
    if semantic_args.item_embeddings_file:
        embeddings, embedded_ids = load_item_embeddings(semantic_args.item_embeddings_file)
        if list(embedded_ids) != list(items["item_id"]):
            raise ValueError(
                f"{semantic_args.item_embeddings_file} holds embeddings of other items than the catalogue "
                f"({len(embedded_ids)} ids vs {items.num_rows} items, or another order)"
            )
        encoder = f"file:{semantic_args.item_embeddings_file}"
    else:
        encoder = semantic_args.encoder_name_or_path or default_encoder()
        embeddings = embed_items(
            items, encoder, batch_size=semantic_args.embedding_batch_size, cache_dir=semantic_args.embedding_cache_dir
        )
    embeddings = torch.as_tensor(np.asarray(embeddings), dtype=torch.float32)
    info["encoder"] = str(encoder)
    info["embedding_dim"] = int(embeddings.shape[1])
    info["embedding_seconds"] = time.time() - started
    collaborative_dim = semantic_args.collaborative_dim
    if collaborative_dim:
        if train is None:
            raise ValueError("collaborative_dim > 0 needs the training rows (train=) to build the collaborative vectors")
        from hf_tiger.data import collaborative_item_embeddings, combine_item_embeddings

        started = time.time()
        vectors = collaborative_item_embeddings(
            train["history"],
            train["target"],
            list(items["item_id"]),
            dim=collaborative_dim,
            window=semantic_args.collaborative_window,
            seed=seed,
        )
        embeddings = torch.from_numpy(
            combine_item_embeddings(embeddings.numpy(), vectors, weight=semantic_args.collaborative_weight)
        )
        info["collaborative"] = {
            "dim": collaborative_dim,
            "window": semantic_args.collaborative_window,
            "weight": semantic_args.collaborative_weight,
            "items_without_pairs": int((np.abs(vectors).sum(axis=1) == 0).sum()),
            "seconds": time.time() - started,
        }

    started = time.time()
    if semantic_args.rqvae_name_or_path:
        rqvae = RQVAEModel.from_pretrained(semantic_args.rqvae_name_or_path)
        if rqvae.config.collaborative_dim != collaborative_dim:
            raise ValueError(
                f"the RQ-VAE at {semantic_args.rqvae_name_or_path} codes {rqvae.config.collaborative_dim} "
                f"collaborative dimensions but collaborative_dim={collaborative_dim}"
            )
        info["rqvae"] = {"loaded_from": semantic_args.rqvae_name_or_path}
    else:
        rqvae_config = {
            "num_levels": semantic_args.rqvae_num_levels,
            "codebook_size": semantic_args.rqvae_codebook_size,
            "latent_dim": semantic_args.rqvae_latent_dim,
            "hidden_dims": list(semantic_args.rqvae_hidden_dims),
            "quantizer": semantic_args.rqvae_quantizer,
            "standardize_inputs": semantic_args.rqvae_standardize_inputs,
            "collaborative_dim": collaborative_dim,
        }
        rqvae, rqvae_metrics = train_rqvae(
            embeddings,
            rqvae_config,
            {
                "num_train_epochs": semantic_args.rqvae_num_train_epochs,
                "per_device_train_batch_size": semantic_args.rqvae_batch_size,
                "learning_rate": semantic_args.rqvae_learning_rate,
                "seed": seed,
                "eval_strategy": "no",  # the final metrics are computed once after training
            },
            output_dir=output_dir / "rqvae",
        )
        info["rqvae"] = {"config": rqvae_config, "metrics": rqvae_metrics}
    rqvae.eval()
    codes = rqvae.get_semantic_ids(embeddings.to(rqvae.device))
    info["rqvae_seconds"] = time.time() - started

    codebook = int(rqvae.config.codebook_size)
    tokenizer = SemanticIDTokenizer.from_codes(
        codes.cpu(),
        item_ids=list(items["item_id"]),
        codebook_size=codebook,
        collision_size=semantic_args.collision_size or codebook,
        num_user_buckets=semantic_args.num_user_buckets,
        max_history=data_args.max_history,
    )
    tokenizer.save_pretrained(output_dir / "tokenizer")
    info["semantic_ids"] = semantic_id_statistics(tokenizer, int(codes.shape[1]))
    return tokenizer, info


def prepare_tokenizer(
    model_args: TigerModelArguments,
    semantic_args: SemanticIDArguments,
    data_args: DataArguments,
    training_args: TigerTrainingArguments,
    items=None,
) -> tuple[Any, dict[str, Any]]:
    """The semantic-ID tokenizer for stage 2, and what to record about it.

    Loaded from `tokenizer_name_or_path` (or the model folder of `model_name_or_path`) when given, else built by
    [`build_semantic_ids`] into `output_dir` (a single process only: stage 1 is not distributed).

    Args:
        items (`datasets.Dataset`, *optional*): `load_items` output; read from `data_args` when needed and absent.

    Returns:
        `tuple`: the [`SemanticIDTokenizer`] and a `dict` (`tokenizer_loaded_from`, or stage 1's statistics).
    """
    from hf_tiger.models.tiger import SemanticIDTokenizer

    path = model_args.tokenizer_name_or_path or model_args.model_name_or_path
    if path:
        return SemanticIDTokenizer.from_pretrained(path), {"tokenizer_loaded_from": path}
    if training_args.world_size > 1:
        raise ValueError(
            "multi-process training needs a prepared tokenizer: stage 1 (embeddings + RQ-VAE) runs in one process; "
            "build it once (scripts/run_pipeline.py or a single-process run) and pass --tokenizer_name_or_path"
        )
    if items is None:
        from hf_tiger.data import load_items

        items = load_items(data_args.dataset, data_dir=data_args.data_dir)
    train = None
    if semantic_args.collaborative_dim:
        from hf_tiger.data import load_sequences

        train = load_sequences(data_args.dataset, data_dir=data_args.data_dir, max_history=data_args.max_history)["train"]
    return build_semantic_ids(
        items, semantic_args, data_args, training_args.output_dir, seed=training_args.seed, train=train
    )


def sample_recommendations(
    model, tokenizer, split, items, num_users: int = 3, top_k: int = 5, use_user_tokens: bool = True
) -> list[dict[str, Any]]:
    """Top-k recommendations of the first `num_users` rows of a split, with item text.

    Returns:
        `list[dict]`: per user `user_id`, the last history items, the `target` and the `recommendations`, each
        item as `{"item_id", "text"}` (recommendations also carry `hit`).
    """
    if num_users <= 0:
        return []
    rows = split.select(range(min(num_users, split.num_rows)))
    text_of = dict(zip(items["item_id"], items["text"]))
    histories = [list(h) for h in rows["history"]]
    user_ids = list(rows["user_id"]) if use_user_tokens and tokenizer.num_user_buckets > 0 else None
    recommended = model.recommend(histories, tokenizer=tokenizer, user_ids=user_ids, top_k=top_k)
    samples = []
    for index, (history, target, recs) in enumerate(zip(histories, rows["target"], recommended)):
        samples.append(
            {
                "user_id": rows["user_id"][index],
                "history": [{"item_id": i, "text": text_of.get(i)} for i in history[-3:]],
                "target": {"item_id": target, "text": text_of.get(target)},
                "recommendations": [
                    {"item_id": i, "text": text_of.get(i), "hit": i == target} for i in recs if i is not None
                ],
            }
        )
    return samples


def default_config_for(dataset: str) -> Path | None:
    """The shipped config of a dataset (`scripts/configs/...`), if there is one."""
    name = DEFAULT_CONFIGS.get(dataset)
    path = CONFIG_DIR / name if name else None
    return path if path is not None and path.is_file() else None


def pipeline_arguments(
    dataset: str = "ml-100k",
    data_dir: str | None = None,
    output_dir: str = "runs/pipeline",
    config: str | Path | Mapping[str, Any] | None = None,
    args: Sequence[str] = (),
    **overrides,
) -> tuple[DataArguments, SemanticIDArguments, TigerModelArguments, TigerTrainingArguments]:
    """Argument groups of [`run_pipeline`]: the dataset's shipped config (or `config`), then `overrides`, then
    command-line style `args`."""
    from .arguments import load_config_file

    if config is None:
        config = default_config_for(dataset)
    values: dict[str, Any] = {}
    if isinstance(config, Mapping):
        values.update(config)
    elif config is not None:
        values.update(load_config_file(config))
    values.update({"dataset": dataset, "output_dir": output_dir})
    if data_dir is not None:
        values["data_dir"] = data_dir
    values.update(overrides)
    return parse_args_with_config(ALL_ARGUMENT_GROUPS, args=list(args), config=values)


def run_pipeline(
    dataset: str = "ml-100k",
    data_dir: str | None = None,
    output_dir: str = "runs/pipeline",
    config: str | Path | Mapping[str, Any] | None = None,
    args: Sequence[str] = (),
    callbacks=None,
    **overrides,
) -> dict[str, Any]:
    """Run every stage: item embeddings -> RQ-VAE -> semantic-ID tokenizer -> TIGER training (checkpoint picked
    on validation) -> test metrics (once) -> a few sample recommendations with item text.

    Writes to `output_dir`: `rqvae/`, `tokenizer/`, checkpoints, the best model with its tokenizer, and
    `results.json` (test metrics, validation history, timings, configuration, versions, hardware).

    Args:
        dataset (`str`, *optional*, defaults to `"ml-100k"`): a `hf_tiger.data.load_sequences` name.
        data_dir (`str`, *optional*): data root (e.g. `../shared/data`).
        output_dir (`str`, *optional*): run folder.
        config (`str`, `Path` or mapping, *optional*): a YAML/JSON config; defaults to the dataset's shipped
            config in `scripts/configs/` (`tiger_ml100k_small.yaml`, `tiger_beauty_paper.yaml`).
        args (`Sequence[str]`, *optional*): command-line style overrides, e.g. `["--num_train_epochs", "2"]`.
        callbacks (*optional*): extra TIGER trainer callbacks.
        overrides: any argument of [`DataArguments`], [`SemanticIDArguments`], [`TigerModelArguments`] or
            [`TigerTrainingArguments`].

    Returns:
        `dict`: results.json's content plus `sample_recommendations`.

    Example:

    ```python
    >>> from hf_tiger.training import run_pipeline
    >>> results = run_pipeline("ml-100k", data_dir="../shared/data", output_dir="runs/demo")  # doctest: +SKIP
    >>> results["test"]["recall@10"]  # doctest: +SKIP
    ```
    """
    from hf_tiger.data import load_items, load_sequences

    data_args, semantic_args, model_args, training_args = pipeline_arguments(
        dataset, data_dir, output_dir, config, args, **overrides
    )
    started = time.time()
    timings: dict[str, float] = {}
    sequences = load_sequences(data_args.dataset, data_dir=data_args.data_dir, max_history=data_args.max_history)
    items = load_items(data_args.dataset, data_dir=data_args.data_dir)
    timings["load_data"] = time.time() - started

    run_dir = Path(training_args.output_dir)
    tokenizer, stage1 = prepare_tokenizer(model_args, semantic_args, data_args, training_args, items=items)
    if "rqvae_seconds" in stage1:
        timings["embeddings"] = stage1["embedding_seconds"]
        timings["rqvae"] = stage1["rqvae_seconds"]

    from transformers import set_seed

    set_seed(training_args.seed)
    rqvae = find_rqvae(semantic_args, model_args, stage1, run_dir) if model_args.embedding_init == "rqvae" else None
    model = build_tiger_model(tokenizer, model_args, rqvae=rqvae)
    stage2_started = time.time()
    results = train_tiger(
        model,
        tokenizer,
        sequences,
        training_args,
        data_args,
        callbacks=callbacks,
        extra_config={
            "semantic_ids": dataclasses.asdict(semantic_args),
            "model_arguments": dataclasses.asdict(model_args),
            "stage1": stage1,
        },
    )
    trainer = results.pop("trainer")
    timings["tiger_train_and_test"] = time.time() - stage2_started
    model = trainer.model
    model.eval()
    results["sample_recommendations"] = sample_recommendations(
        model,
        tokenizer,
        sequences["test"],
        items,
        num_users=training_args.num_sample_recommendations,
        top_k=min(5, training_args.num_return_sequences),
        use_user_tokens=data_args.use_user_tokens,
    )
    # Count-based references scored on the same test rows with the same metric code (fitted on the train split).
    baselines_started = time.time()
    results["baselines"] = baseline_metrics(
        sequences,
        "test",
        ks=training_args.metric_ks,
        limit=data_args.max_test_samples,
        catalogue=tokenizer.item_ids,
    )
    timings["baselines"] = time.time() - baselines_started
    timings["total"] = time.time() - started
    results["timings"] = timings
    if trainer.is_world_process_zero():
        write_json(run_dir / "results.json", results)
    return results
