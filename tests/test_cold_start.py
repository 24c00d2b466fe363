"""Cold start: new items get semantic IDs from the frozen RQ-VAE and become recommendable without retraining."""

import json

import numpy as np
import pytest
import torch
from hub_helpers import EMBEDDING_DIM, ITEM_IDS, tiny_recommender

from hf_tiger import TigerRecommender, add_items
from hf_tiger.cold_start import MINILM_HUB_ID, embed_texts, portable_encoder_name, resolve_encoder

HISTORY = [ITEM_IDS[1], ITEM_IDS[2]]


def new_embeddings(count: int, seed: int = 123) -> torch.Tensor:
    return torch.randn(count, EMBEDDING_DIM, generator=torch.Generator().manual_seed(seed))


def test_add_items_makes_new_items_recommendable():
    rec = tiny_recommender()
    model, tokenizer, rqvae = rec.model, rec.tokenizer, rec.rqvae
    new_ids = ["NEW-1", "NEW-2", "NEW-3"]
    embeddings = new_embeddings(3)
    old_semantic_ids = {item_id: tokenizer.semantic_id(item_id) for item_id in ITEM_IDS}

    semantic_ids = add_items(model, tokenizer, rqvae, new_ids, embeddings=embeddings)

    codes = rqvae.get_semantic_ids(embeddings).tolist()
    assert [list(s[:-1]) for s in semantic_ids] == codes  # RQ-VAE codes, then the collision level
    all_ids = [*old_semantic_ids.values(), *semantic_ids]
    assert len(set(all_ids)) == len(all_ids)  # still unique after the collision level
    assert {i: tokenizer.semantic_id(i) for i in ITEM_IDS} == old_semantic_ids  # existing items unchanged
    assert tokenizer.item_ids == ITEM_IDS + new_ids
    assert torch.equal(model.catalogue, tokenizer.catalogue_token_ids())
    assert model.config.catalogue_size == len(ITEM_IDS) + 3

    # A catalogue no larger than top_k: every item, the new ones included, comes back exactly once.
    recs = model.recommend([HISTORY], tokenizer=tokenizer, top_k=len(ITEM_IDS) + 3, num_beams=20)[0]
    assert sorted(recs) == sorted(ITEM_IDS + new_ids)
    # Restricted to the new items (e.g. "what's new"), only they are recommended, and new items work as history.
    model.set_catalogue(tokenizer.catalogue_token_ids()[len(ITEM_IDS) :])
    recs = model.recommend([HISTORY + ["NEW-2"]], tokenizer=tokenizer, top_k=3, num_beams=6)[0]
    assert sorted(recs) == sorted(new_ids)


def test_add_items_refuses_a_tokenizer_of_another_model():
    rec, other = tiny_recommender(seed=0), tiny_recommender(seed=1)
    before = rec.model.catalogue.clone()
    items_before = list(other.tokenizer.item_ids)
    with pytest.raises(ValueError, match="tokenizer and model do not match"):
        add_items(rec.model, other.tokenizer, rec.rqvae, ["NEW-1"], embeddings=new_embeddings(1))
    assert torch.equal(rec.model.catalogue, before) and other.tokenizer.item_ids == items_before


def test_add_items_collision_codes_continue_after_existing_items():
    rec = tiny_recommender()
    # Two new items with the embedding of an existing item share its RQ-VAE codes: collision codes 1 and 2 follow.
    existing = rec.rqvae.get_semantic_ids(new_embeddings(1)).tolist()[0]
    same_codes = [item for item in ITEM_IDS if list(rec.tokenizer.semantic_id(item)[:-1]) == existing]
    embeddings = new_embeddings(1).repeat(2, 1)
    semantic_ids = add_items(rec.model, rec.tokenizer, rec.rqvae, ["NEW-A", "NEW-B"], embeddings=embeddings)
    assert [s[-1] for s in semantic_ids] == [len(same_codes), len(same_codes) + 1]


def test_add_items_with_texts_and_round_trip(tmp_path):
    rec = tiny_recommender()
    seen = []

    def encoder(texts):  # stands in for the sentence encoder: any callable texts -> [N, dim]
        seen.extend(texts)
        return np.stack([np.full(EMBEDDING_DIM, float(len(t)) / 10, dtype=np.float32) for t in texts])

    texts = ["a brand new lip balm", "another new item"]
    semantic_ids = rec.add_items(["NEW-1", "NEW-2"], texts=texts, encoder=encoder, records=[{"brand": "X"}, {}])
    assert seen == texts
    assert rec.item_text("NEW-1") == texts[0] and rec.items["NEW-1"]["brand"] == "X"

    folder = tmp_path / "with-new-items"
    rec.save_pretrained(folder)
    loaded = TigerRecommender.from_pretrained(folder)
    assert loaded.tokenizer.item_ids == ITEM_IDS + ["NEW-1", "NEW-2"]
    assert [loaded.tokenizer.semantic_id(i) for i in ("NEW-1", "NEW-2")] == semantic_ids
    assert torch.equal(loaded.model.catalogue, rec.model.catalogue)
    assert loaded.item_text("NEW-2") == texts[1]
    assert json.loads((folder / "hf_tiger.json").read_text())["catalogue_size"] == len(ITEM_IDS) + 2
    recs = loaded.recommend([HISTORY], top_k=len(ITEM_IDS) + 2, num_beams=20)[0]
    assert {"NEW-1", "NEW-2"} <= set(recs)
    assert loaded.pipeline()(["NEW-1"], top_k=3)  # a new item as history


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"embeddings": torch.randn(1, EMBEDDING_DIM + 1)}, ValueError, "width"),
        ({"embeddings": torch.randn(2, EMBEDDING_DIM)}, ValueError, "shape"),
        ({"embeddings": torch.randn(1, EMBEDDING_DIM), "texts": ["x"]}, ValueError, "exactly one"),
        ({}, ValueError, "exactly one"),
        ({"texts": ["x"]}, ValueError, "encoder"),
        ({"texts": [""], "encoder": lambda texts: np.zeros((1, EMBEDDING_DIM))}, ValueError, "non-empty"),
    ],
)
def test_add_items_bad_input_changes_nothing(kwargs, error, match):
    rec = tiny_recommender()
    catalogue = rec.model.catalogue.clone()
    with pytest.raises(error, match=match):
        add_items(rec.model, rec.tokenizer, rec.rqvae, ["NEW-1"], **kwargs)
    assert rec.tokenizer.item_ids == ITEM_IDS and torch.equal(rec.model.catalogue, catalogue)


def test_add_items_rejects_known_and_duplicate_ids():
    rec = tiny_recommender()
    with pytest.raises(ValueError, match="already in the catalogue"):
        add_items(rec.model, rec.tokenizer, rec.rqvae, [ITEM_IDS[0]], embeddings=new_embeddings(1))
    with pytest.raises(ValueError, match="duplicate"):
        add_items(rec.model, rec.tokenizer, rec.rqvae, ["NEW", "NEW"], embeddings=new_embeddings(2))
    with pytest.raises(ValueError, match="RQ-VAE"):
        add_items(rec.model, rec.tokenizer, None, ["NEW"], embeddings=new_embeddings(1))
    assert rec.tokenizer.item_ids == ITEM_IDS


def test_encoder_names_are_portable(monkeypatch):
    from hf_tiger.data import minilm_path

    local = str(minilm_path())
    assert portable_encoder_name(local) == MINILM_HUB_ID
    assert portable_encoder_name("sentence-transformers/sentence-t5-base") == "sentence-transformers/sentence-t5-base"
    assert portable_encoder_name(None) is None
    assert resolve_encoder(MINILM_HUB_ID) == str(minilm_path().resolve())  # offline in tests
    assert resolve_encoder("sentence-transformers/sentence-t5-base") == "sentence-transformers/sentence-t5-base"


@pytest.mark.slow
def test_embed_texts_with_the_recorded_encoder_name():
    """The recorded Hub name resolves offline to the packaged MiniLM; the vectors match `embed_items`."""
    from hf_tiger.data import embed_items, minilm_path

    texts = ["nail lacquer simmer and shimmer; OPI, Makeup", "rose lip balm; Burt's Bees"]
    vectors = embed_texts(texts, MINILM_HUB_ID)
    assert vectors.shape == (2, 384) and vectors.dtype == torch.float32
    expected = embed_items(texts, model_name_or_path=str(minilm_path()), use_cache=False, show_progress_bar=False)
    torch.testing.assert_close(vectors, torch.as_tensor(expected))
