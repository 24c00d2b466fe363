"""TIGER: the semantic-ID tokenizer, the T5-based model and trie-constrained decoding."""

from .configuration_tiger import TigerConfig
from .generation_tiger import CatalogueIndex, TransitionPrior, TrieConstrainedLogitsProcessor
from .modeling_tiger import TigerForConditionalGeneration
from .tokenization_tiger import SemanticIDTokenizer, UnknownItemError, catalogue_fingerprint

__all__ = [
    "CatalogueIndex",
    "SemanticIDTokenizer",
    "TigerConfig",
    "TigerForConditionalGeneration",
    "TransitionPrior",
    "TrieConstrainedLogitsProcessor",
    "UnknownItemError",
    "catalogue_fingerprint",
]
