"""hf_tiger: TIGER generative retrieval (RQ-VAE semantic IDs + trie-constrained T5) for Hugging Face.

This file holds the public names and the Auto* registration, nothing else.
"""

__version__ = "0.1.0"

# --- rqvae (stage 1: semantic IDs) ---
from transformers import AutoConfig, AutoModel  # noqa: E402

from .models.rqvae import RQVAEConfig, RQVAEModel  # noqa: E402

AutoConfig.register("rqvae", RQVAEConfig, exist_ok=True)
AutoModel.register(RQVAEConfig, RQVAEModel, exist_ok=True)
# auto_map + model files copied on save_pretrained, so saved folders load with trust_remote_code=True.
RQVAEConfig.register_for_auto_class("AutoConfig")
RQVAEModel.register_for_auto_class("AutoModel")
# --- end rqvae ---

# --- tiger (stage 2: semantic-ID tokenizer + generative retrieval model) ---
from transformers import AutoConfig as _AutoConfig  # noqa: E402
from transformers import AutoModel as _AutoModel  # noqa: E402
from transformers import AutoModelForSeq2SeqLM as _AutoModelForSeq2SeqLM  # noqa: E402
from transformers import AutoTokenizer as _AutoTokenizer  # noqa: E402

from .models.tiger import (  # noqa: E402
    SemanticIDTokenizer,
    TigerConfig,
    TigerForConditionalGeneration,
    TransitionPrior,  # noqa: F401 (public name)
    TrieConstrainedLogitsProcessor,  # noqa: F401 (public name)
)

_AutoConfig.register("tiger", TigerConfig, exist_ok=True)
_AutoModel.register(TigerConfig, TigerForConditionalGeneration, exist_ok=True)
_AutoModelForSeq2SeqLM.register(TigerConfig, TigerForConditionalGeneration, exist_ok=True)
_AutoTokenizer.register(TigerConfig, tokenizer_class=SemanticIDTokenizer, exist_ok=True)
# auto_map + model files copied on save_pretrained, so saved folders load with trust_remote_code=True.
TigerConfig.register_for_auto_class("AutoConfig")
TigerForConditionalGeneration.register_for_auto_class("AutoModelForSeq2SeqLM")
SemanticIDTokenizer.register_for_auto_class("AutoTokenizer")
# --- end tiger ---

# --- hub (recommender repos, model cards, the pipeline, cold start) ---
from transformers import AutoModelForSeq2SeqLM as _AutoModelForSeq2SeqLM  # noqa: E402
from transformers.pipelines import PIPELINE_REGISTRY as _PIPELINE_REGISTRY  # noqa: E402

from .cold_start import add_items  # noqa: E402, F401 (public name)
from .hub import TigerRecommender, create_model_card, save_recommender  # noqa: E402, F401 (public names)
from .hub.recommender import serve_pipeline_locally as _serve_pipeline_locally  # noqa: E402
from .models.tiger import TigerConfig as _TigerConfig  # noqa: E402
from .pipelines import NextItemRecommendationPipeline  # noqa: E402

_PIPELINE_REGISTRY.register_pipeline(
    "next-item-recommendation",
    pipeline_class=NextItemRecommendationPipeline,
    pt_model=_AutoModelForSeq2SeqLM,
    type="text",
)
# Saved config.json files name the pipeline's remote code (for use without hf_tiger); with hf_tiger imported the
# registered pipeline serves the task, without transformers asking for trust_remote_code.
_serve_pipeline_locally(_TigerConfig)
# --- end hub ---
