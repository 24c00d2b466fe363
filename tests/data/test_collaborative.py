"""Collaborative item vectors for stage 1: co-occurrence counts, PPMI + SVD vectors, text + vectors, the pipeline
option (`collaborative_dim`) and cold start on an RQ-VAE that codes both."""

import numpy as np
import pytest
import torch
from datasets import Dataset

from hf_tiger.cold_start import add_items
from hf_tiger.data import (
    collaborative_item_embeddings,
    combine_item_embeddings,
    cooccurrence_counts,
    save_item_embeddings,
)
from hf_tiger.models.rqvae import RQVAEConfig, RQVAEModel
from hf_tiger.models.tiger import SemanticIDTokenizer, TigerConfig, TigerForConditionalGeneration
from hf_tiger.training.arguments import DataArguments, SemanticIDArguments
from hf_tiger.training.pipeline import build_semantic_ids


def test_cooccurrence_counts_pair_each_target_with_its_last_items():
    # rows of one user's sequence a b c: prefixes (a -> b) and (a b -> c)
    counts = cooccurrence_counts([["a"], ["a", "b"]], ["b", "c"], ["a", "b", "c", "d"], window=2).toarray()
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[1, 0] = 1.0  # a b, distance 1 (row 1)
    expected[1, 2] = expected[2, 1] = 1.0  # b c, distance 1 (row 2)
    expected[0, 2] = expected[2, 0] = 0.5  # a c, distance 2 (row 2)
    np.testing.assert_allclose(counts, expected)
    # window 1: only adjacent pairs
    assert cooccurrence_counts([["a"], ["a", "b"]], ["b", "c"], ["a", "b", "c", "d"], window=1).toarray()[0, 2] == 0


def test_cooccurrence_counts_name_bad_input():
    with pytest.raises(ValueError, match="window must be >= 1"):
        cooccurrence_counts([["a"]], ["b"], ["a", "b"], window=0)
    with pytest.raises(ValueError, match="'x' is not in the catalogue"):
        cooccurrence_counts([["a"]], ["x"], ["a", "b"])
    with pytest.raises(ValueError, match="'y' is not in the catalogue"):
        cooccurrence_counts([["y"]], ["a"], ["a", "b"])


def _two_communities(num_users: int = 200, seed: int = 0):
    """Users who buy only items 0-9 or only items 10-19; items 20-21 never appear."""
    rng = np.random.default_rng(seed)
    histories, targets = [], []
    for user in range(num_users):
        offset = 10 * (user % 2)
        sequence = list(offset + rng.integers(0, 10, size=6))
        for end in range(1, len(sequence)):
            histories.append(sequence[:end])
            targets.append(sequence[end])
    return histories, targets, list(range(22))


def test_collaborative_vectors_put_co_bought_items_together():
    histories, targets, item_ids = _two_communities()
    vectors = collaborative_item_embeddings(histories, targets, item_ids, dim=4, window=3)
    assert vectors.shape == (22, 4) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:20], axis=1), 1.0, rtol=1e-5)
    assert not vectors[20:].any()  # items with no pairs: zero, their codes come from text alone
    cosine = vectors[:20] @ vectors[:20].T
    within = np.concatenate([cosine[:10, :10][~np.eye(10, dtype=bool)], cosine[10:, 10:][~np.eye(10, dtype=bool)]])
    across = cosine[:10, 10:].ravel()
    assert within.min() > across.max()
    # deterministic
    np.testing.assert_array_equal(vectors, collaborative_item_embeddings(histories, targets, item_ids, dim=4, window=3))
    with pytest.raises(ValueError, match="dim must be in"):
        collaborative_item_embeddings(histories, targets, item_ids, dim=22)
    with pytest.raises(ValueError, match="no item pairs"):
        collaborative_item_embeddings([["a"]], ["a"], ["a", "b", "c"], dim=1)


def test_combine_item_embeddings_scales_the_two_parts():
    text = np.array([[3.0, 4.0], [0.0, 2.0]], dtype=np.float32)
    collaborative = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    combined = combine_item_embeddings(text, collaborative, weight=0.5)
    np.testing.assert_allclose(combined, [[0.6, 0.8, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="same items"):
        combine_item_embeddings(text, collaborative[:1])
    with pytest.raises(ValueError, match="weight must be >= 0"):
        combine_item_embeddings(text, collaborative, weight=-1)


def _stage1_inputs(tmp_path, text_dim: int = 8):
    histories, targets, item_ids = _two_communities(num_users=60)
    items = Dataset.from_dict({"item_id": item_ids, "text": [f"item {i}" for i in item_ids]})
    train = Dataset.from_dict({"user_id": list(range(len(targets))), "history": histories, "target": targets})
    text = np.random.default_rng(1).standard_normal((len(item_ids), text_dim)).astype(np.float32)
    path = save_item_embeddings(tmp_path / "text.safetensors", text, item_ids)
    args = dict(
        item_embeddings_file=str(path),
        rqvae_num_levels=2,
        rqvae_codebook_size=4,
        rqvae_latent_dim=4,
        rqvae_hidden_dims=[16],
        rqvae_num_train_epochs=2,
        rqvae_batch_size=8,
        num_user_buckets=0,
    )
    return items, train, text, args


def test_build_semantic_ids_with_collaborative_vectors(tmp_path):
    items, train, text, args = _stage1_inputs(tmp_path)
    semantic_args = SemanticIDArguments(collaborative_dim=3, collaborative_window=2, collaborative_weight=2.0, **args)
    tokenizer, info = build_semantic_ids(items, semantic_args, DataArguments(max_history=6), tmp_path / "run", train=train)
    assert info["embedding_dim"] == 8  # the text's width
    assert info["collaborative"]["dim"] == 3 and info["collaborative"]["items_without_pairs"] == 2
    rqvae = RQVAEModel.from_pretrained(tmp_path / "run" / "rqvae")
    assert rqvae.config.input_dim == 11 and rqvae.config.collaborative_dim == 3  # saved with the model
    # the codes are those of [unit text, 2 x vectors]
    vectors = collaborative_item_embeddings(train["history"], train["target"], list(items["item_id"]), dim=3, window=2,
                                            seed=42)
    combined = torch.from_numpy(combine_item_embeddings(text, vectors, weight=2.0))
    codes = rqvae.eval().get_semantic_ids(combined).tolist()
    assert [list(tokenizer.semantic_id(i)[:-1]) for i in items["item_id"]] == codes
    assert SemanticIDTokenizer.from_pretrained(tmp_path / "run" / "tokenizer").item_ids == list(items["item_id"])

    with pytest.raises(ValueError, match="needs the training rows"):
        build_semantic_ids(items, semantic_args, DataArguments(max_history=6), tmp_path / "again")
    # an RQ-VAE trained on text alone does not code the collaborative dimensions
    text_only = SemanticIDArguments(**args)
    build_semantic_ids(items, text_only, DataArguments(max_history=6), tmp_path / "text")
    mismatched = SemanticIDArguments(
        collaborative_dim=3, **{**args, "rqvae_name_or_path": str(tmp_path / "text" / "rqvae")}
    )
    with pytest.raises(ValueError, match="codes 0 collaborative dimensions but collaborative_dim=3"):
        build_semantic_ids(items, mismatched, DataArguments(max_history=6), tmp_path / "bad", train=train)
    with pytest.raises(ValueError, match="collaborative_dim must be >= 0"):
        SemanticIDArguments(collaborative_dim=-1)


def test_cold_start_completes_text_embeddings_with_zero_vectors():
    torch.manual_seed(0)
    text_dim, collaborative_dim = 6, 2
    rqvae = RQVAEModel(
        RQVAEConfig(
            input_dim=text_dim + collaborative_dim, collaborative_dim=collaborative_dim, hidden_dims=[16],
            latent_dim=4, codebook_size=4, num_levels=2,
        )
    )
    catalogue = torch.randn(12, text_dim + collaborative_dim)
    rqvae.kmeans_init_(catalogue, seed=0)
    rqvae.eval()
    item_ids = [f"I{i}" for i in range(12)]
    tokenizer = SemanticIDTokenizer.from_codes(
        rqvae.get_semantic_ids(catalogue), item_ids=item_ids, codebook_size=4, collision_size=12, num_user_buckets=0,
        max_history=4,
    )
    config = TigerConfig.from_tokenizer(tokenizer, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1,
                                        num_heads=2)
    model = TigerForConditionalGeneration(config)
    model.set_catalogue(tokenizer.catalogue_token_ids())

    new_text = torch.randn(2, text_dim) * 3
    semantic_ids = add_items(model, tokenizer, rqvae, ["NEW-1", "NEW-2"], embeddings=new_text)
    expected = torch.cat([new_text / new_text.norm(dim=1, keepdim=True), torch.zeros(2, collaborative_dim)], dim=1)
    assert [list(s[:-1]) for s in semantic_ids] == rqvae.get_semantic_ids(expected).tolist()
    assert tokenizer.item_ids[-2:] == ["NEW-1", "NEW-2"]
    with pytest.raises(ValueError, match=r"width 5 but the RQ-VAE expects 6 \(text; the RQ-VAE appends its 2"):
        add_items(model, tokenizer, rqvae, ["NEW-3"], embeddings=torch.randn(1, 5))
    with pytest.raises(ValueError, match="collaborative_dim must be an integer in"):
        RQVAEConfig(input_dim=4, collaborative_dim=4)
