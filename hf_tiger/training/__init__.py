"""Stage 2 training: tokenized datasets, the collator, `TigerTrainer` (constrained-generation metrics),
`train_tiger` (validation picks the checkpoint, test once at the end) and the end-to-end `run_pipeline`."""

from .arguments import (
    DataArguments,
    SemanticIDArguments,
    TigerModelArguments,
    TigerTrainingArguments,
    load_config_file,
    parse_args_with_config,
)
from .data import (
    TigerDataCollator,
    encode_examples,
    encode_user_sequences,
    sort_by_length,
    tokenize_sequences,
    tokenize_split,
    user_sequence_windows,
)
from .evaluation import evaluate_saved_model, load_model_and_tokenizer, recommend_with_text
from .pipeline import build_semantic_ids, prepare_tokenizer, run_pipeline, sample_recommendations
from .train import (
    build_tiger_model,
    evaluate_split,
    find_rqvae,
    item_popularity_percentiles,
    package_versions,
    resolve_checkpoint,
    train_tiger,
    write_json,
)
from .trainer import RetrievalMetricsComputer, TigerTrainer

__all__ = [
    "DataArguments",
    "RetrievalMetricsComputer",
    "SemanticIDArguments",
    "TigerDataCollator",
    "TigerModelArguments",
    "TigerTrainer",
    "TigerTrainingArguments",
    "build_semantic_ids",
    "build_tiger_model",
    "find_rqvae",
    "item_popularity_percentiles",
    "encode_examples",
    "encode_user_sequences",
    "evaluate_saved_model",
    "evaluate_split",
    "load_model_and_tokenizer",
    "load_config_file",
    "package_versions",
    "parse_args_with_config",
    "recommend_with_text",
    "resolve_checkpoint",
    "prepare_tokenizer",
    "run_pipeline",
    "sample_recommendations",
    "tokenize_sequences",
    "sort_by_length",
    "tokenize_split",
    "train_tiger",
    "user_sequence_windows",
    "write_json",
]
