"""RQ-VAE (TIGER stage 1): item embeddings -> semantic IDs.

The training helpers (`train_rqvae`, metrics, plot) import the Trainer, so they load on first access.
"""

import importlib

from .configuration_rqvae import RQVAEConfig
from .modeling_rqvae import RQVAEModel, RQVAEOutput, RQVAEPreTrainedModel

_TRAINING_NAMES = (
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
)


def __getattr__(name: str):
    if name in _TRAINING_NAMES:
        return getattr(importlib.import_module(".training_rqvae", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RQVAEConfig", "RQVAEModel", "RQVAEOutput", "RQVAEPreTrainedModel", *_TRAINING_NAMES]
