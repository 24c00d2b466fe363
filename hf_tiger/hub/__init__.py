"""Hub-ready recommender repos: the folder layout, `push_to_hub`, and model cards."""

from .model_card import build_eval_results, create_model_card, extract_test_metrics, load_results
from .recommender import (
    HF_TIGER_CONFIG_NAME,
    ITEMS_FILE_NAME,
    PIPELINE_FILE_NAME,
    RESULTS_FILE_NAME,
    RQVAE_SUBFOLDER,
    TigerRecommender,
    save_recommender,
)

__all__ = [
    "HF_TIGER_CONFIG_NAME",
    "ITEMS_FILE_NAME",
    "PIPELINE_FILE_NAME",
    "RESULTS_FILE_NAME",
    "RQVAE_SUBFOLDER",
    "TigerRecommender",
    "build_eval_results",
    "create_model_card",
    "extract_test_metrics",
    "load_results",
    "save_recommender",
]
