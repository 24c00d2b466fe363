"""TIGER: the semantic-ID tokenizer, the T5-based model and trie-constrained decoding."""

from .configuration_tiger import TigerConfig
from .tokenization_tiger import SemanticIDTokenizer, UnknownItemError, catalogue_fingerprint

__all__ = ["SemanticIDTokenizer", "TigerConfig", "UnknownItemError", "catalogue_fingerprint"]
