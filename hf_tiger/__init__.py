"""hf_tiger: TIGER generative retrieval (RQ-VAE semantic IDs + trie-constrained T5) for Hugging Face.

This file holds the public names and the Auto* registration, nothing else.
"""

__version__ = "0.1.0"
