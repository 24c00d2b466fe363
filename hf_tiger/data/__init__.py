"""Data for hf_tiger: readers returning `datasets` objects, leave-one-out splits, item-text embeddings.

Readers: P5-format folders (`amazon-p5/beauty`, `amazon-p5/sports`, ...), raw Amazon 2014 reviews + meta
(`amazon-2014/<Category>`), MovieLens `ml-100k` / `ml-1m`, and generic interactions CSV/JSONL + items JSONL.
"""

from ._io import DataFormatError, InteractionData
from .amazon_2014 import read_amazon_2014
from .amazon_p5 import read_amazon_p5
from .collaborative import collaborative_item_embeddings, combine_item_embeddings, cooccurrence_counts
from .download import cache_root, resolve_data_dir
from .embeddings import (
    ENCODER_PRESETS,
    MINILM_PACKAGE,
    SENTENCE_T5,
    assemble_split_zip,
    default_embeddings_cache_dir,
    default_encoder,
    embed_items,
    embeddings_cache_key,
    encoder_path,
    hub_is_reachable,
    load_item_embeddings,
    minilm_path,
    resolve_encoder,
    save_item_embeddings,
)
from .generic import read_interactions
from .loading import (
    DATASET_NAMES,
    dataset_statistics,
    load_interaction_data,
    load_items,
    load_sequences,
    load_user_sequences,
)
from .movielens import read_ml_1m, read_ml_100k
from .splits import leave_one_out

__all__ = [
    "DATASET_NAMES",
    "MINILM_PACKAGE",
    "SENTENCE_T5",
    "DataFormatError",
    "InteractionData",
    "cache_root",
    "collaborative_item_embeddings",
    "combine_item_embeddings",
    "cooccurrence_counts",
    "dataset_statistics",
    "ENCODER_PRESETS",
    "assemble_split_zip",
    "default_embeddings_cache_dir",
    "default_encoder",
    "embed_items",
    "embeddings_cache_key",
    "encoder_path",
    "hub_is_reachable",
    "leave_one_out",
    "load_interaction_data",
    "load_item_embeddings",
    "load_items",
    "load_sequences",
    "load_user_sequences",
    "minilm_path",
    "read_amazon_2014",
    "read_amazon_p5",
    "read_interactions",
    "read_ml_100k",
    "read_ml_1m",
    "resolve_data_dir",
    "resolve_encoder",
    "save_item_embeddings",
]
