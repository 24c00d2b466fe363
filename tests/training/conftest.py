"""Shared set-up of the training tests: ML-100K splits, a tokenizer from random codes, tiny TIGER settings."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def ml100k(shared_data_dir):
    from hf_tiger.data import load_items, load_sequences

    return load_sequences("ml-100k", data_dir=shared_data_dir), load_items("ml-100k", data_dir=shared_data_dir)


@pytest.fixture(scope="session")
def tiny_tokenizer(ml100k):
    """Semantic IDs from seeded random codes (3 levels x 8 codes + collision level): training mechanics only."""
    from hf_tiger import SemanticIDTokenizer

    _, items = ml100k
    codes = np.random.default_rng(0).integers(0, 8, size=(items.num_rows, 3))
    return SemanticIDTokenizer.from_codes(
        codes, item_ids=list(items["item_id"]), codebook_size=8, collision_size=32, num_user_buckets=16
    )


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tiny_tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer")
    tiny_tokenizer.save_pretrained(path)
    return path
