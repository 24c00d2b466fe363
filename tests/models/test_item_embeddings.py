"""Learned item-ID embeddings added to the encoder input (`TigerConfig.num_item_embeddings`)."""

import pytest
import torch
from test_modeling_tiger import make_model, make_tokenizer, random_histories

from hf_tiger import TigerConfig, TigerForConditionalGeneration
from hf_tiger.hub.recommender import _model_size


def _with_item_vectors(tok, seed=0, **sizes):
    """A model with item-ID embeddings, each item's vector set to a distinct random one."""
    model = make_model(tok, seed=seed, num_item_embeddings=tok.catalogue_size, **sizes)
    with torch.no_grad():
        model.item_embeddings.weight[:-1].normal_(generator=torch.Generator().manual_seed(seed))
    return model


def _row_of(model, tok):
    """Catalogue row -> its item-ID embedding row, from the sorted keys (independent of the model's lookup)."""
    table = tok.catalogue_token_ids()
    key = torch.zeros(table.shape[0], dtype=torch.long)
    for level, (offset, size) in enumerate(zip(model.config.level_offsets, model.config.codebook_sizes)):
        key = key * size + (table[:, level] - offset)
    return torch.searchsorted(model.item_embedding_keys, key)


def test_a_fresh_model_is_the_plain_tiger():
    """Zero vectors at initialisation: the same weights give the same logits with or without the option."""
    tok = make_tokenizer(1, 60, levels=2, codebook=8)
    plain = make_model(tok, seed=1)
    with_items = make_model(tok, seed=1, num_item_embeddings=tok.catalogue_size)
    assert with_items.config.num_item_embeddings == tok.catalogue_size and plain.config.num_item_embeddings == 0
    assert not with_items.item_embeddings.weight.any()
    missing, unexpected = with_items.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["item_embedding_keys", "item_embeddings.weight"] and not unexpected
    batch = tok.batch_encode_histories(random_histories(tok, 1, count=4), targets=tok.item_ids[:4])
    with torch.no_grad():
        assert torch.equal(with_items(**batch).logits, plain(**batch).logits)
    # the keys are the catalogue's semantic IDs, each item owning one row
    assert torch.equal(_row_of(with_items, tok).sort().values, torch.arange(tok.catalogue_size))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("user_tokens", [False, True])
def test_each_item_vector_is_added_to_all_of_its_tokens(causal, user_tokens):
    tok = make_tokenizer(2, 70, levels=3, codebook=8)
    model = _with_item_vectors(tok, seed=2, causal_encoder=causal)
    histories = random_histories(tok, 2, count=4)
    batch = tok.batch_encode_histories(histories, user_ids=["a", "b", "c", "d"] if user_tokens else None)
    rows = _row_of(model, tok)
    expected = model.get_input_embeddings()(batch["input_ids"]).detach().clone()
    first = 1 if user_tokens else 0
    index = {item: i for i, item in enumerate(tok.item_ids)}
    levels = tok.num_levels
    for b, history in enumerate(histories):
        start = first  # right padding
        for position, item in enumerate(history[-tok.max_history :]):
            tokens = slice(start + position * levels, start + (position + 1) * levels)
            assert torch.equal(batch["input_ids"][b, tokens], tok.catalogue_token_ids()[index[item]])
            expected[b, tokens] += model.item_embeddings.weight[rows[index[item]]].detach()
    hook_off = make_model(tok, seed=2, causal_encoder=causal)  # same weights, no item vectors
    hook_off.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        ours = model.get_encoder()(**batch).last_hidden_state
        reference = hook_off.get_encoder()(inputs_embeds=expected, attention_mask=batch["attention_mask"])
    real = batch["attention_mask"].bool()  # (a causal encoder given embeddings cannot tell </s> from padding)
    assert torch.allclose(ours[real], reference.last_hidden_state[real], atol=1e-5)
    with torch.no_grad():
        assert (ours - hook_off.get_encoder()(**batch).last_hidden_state)[real].abs().max() > 1e-2


def test_only_the_input_items_get_gradients():
    tok = make_tokenizer(3, 60, levels=2, codebook=8)
    model = make_model(tok, seed=3, num_item_embeddings=tok.catalogue_size).train()
    history = tok.item_ids[5:8]
    batch = tok.batch_encode_histories([history, history[:1]], targets=tok.item_ids[20:22])
    model(**batch).loss.backward()
    touched = set(model.item_embeddings.weight.grad.abs().sum(-1).nonzero().flatten().tolist())
    assert touched == set(_row_of(model, tok)[5:8].tolist())  # not the target's, not the padding row


def recommend_and_reload(model, tok, path):
    """Top-5 of a model with learned vectors: both beam searches agree, the vectors change them; then save and load.
    Returns `(histories, recommendations, loaded model)`."""
    histories = random_histories(tok, 4, count=5)
    recs = model.recommend(histories, tokenizer=tok, top_k=5, num_beams=8)
    assert model.recommend(histories, tokenizer=tok, top_k=5, num_beams=8, fast_beam_search=False) == recs
    plain = make_model(tok, seed=4)
    plain.load_state_dict(model.state_dict(), strict=False)
    assert plain.recommend(histories, tokenizer=tok, top_k=5, num_beams=8) != recs  # the vectors matter
    model.save_pretrained(path)
    return histories, recs, TigerForConditionalGeneration.from_pretrained(path).eval()


def test_saves_loads_recommends_and_keeps_its_items_after_a_cold_start(tmp_path):
    tok = make_tokenizer(4, 90, levels=2, codebook=16)
    model = _with_item_vectors(tok, seed=4).eval()
    histories, recs, loaded = recommend_and_reload(model, tok, tmp_path)
    assert loaded.config.num_item_embeddings == tok.catalogue_size
    assert f"item-ID embeddings for {tok.catalogue_size} items" in _model_size(loaded.config)
    assert "item-ID" not in _model_size(make_model(tok).config)
    assert torch.equal(loaded.item_embeddings.weight, model.item_embeddings.weight)
    assert loaded.recommend(histories, tokenizer=tok, top_k=5, num_beams=8) == recs
    # a new catalogue (fewer items) keeps which items own vectors; an unknown item reads as its semantic ID alone
    keys = loaded.item_embedding_keys.clone()
    loaded.set_catalogue(tok.catalogue_token_ids()[:40])
    assert torch.equal(loaded.item_embedding_keys, keys)


def test_the_first_catalogue_must_match_and_vectors_need_packable_ids():
    tok = make_tokenizer(5, 50, levels=2, codebook=8)
    config = TigerConfig.from_tokenizer(tok, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8,
                                        num_item_embeddings=tok.catalogue_size + 1)
    with pytest.raises(ValueError, match="item-ID embeddings for 51 items, but the first catalogue it is given holds 50"):
        TigerForConditionalGeneration(config).set_catalogue(tok.catalogue_token_ids())
    with pytest.raises(ValueError, match="num_item_embeddings must be >= 0"):
        TigerConfig(codebook_sizes=[8, 8], num_item_embeddings=-1)
    with pytest.raises(ValueError, match="pack into one int64 key"):
        TigerConfig(codebook_sizes=[2**31, 2**31], num_user_buckets=0, num_item_embeddings=3)


def test_scale_multiplies_the_vectors_and_init_std_draws_them():
    tok = make_tokenizer(6, 60, levels=2, codebook=8)
    batch = tok.batch_encode_histories(random_histories(tok, 6, count=3), targets=tok.item_ids[:3])
    scaled = _with_item_vectors(tok, seed=6, item_embedding_scale=3.0)
    tripled = make_model(tok, seed=6, num_item_embeddings=tok.catalogue_size)
    state = scaled.state_dict()
    tripled.load_state_dict({**state, "item_embeddings.weight": state["item_embeddings.weight"] * 3})
    with torch.no_grad():
        assert torch.allclose(scaled(**batch).logits, tripled(**batch).logits, atol=1e-5)
    drawn = make_model(tok, seed=6, num_item_embeddings=tok.catalogue_size, item_embedding_init_std=1.0)
    weight = drawn.item_embeddings.weight.detach()
    assert not weight[-1].any() and weight[:-1].std().item() == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="item_embedding_init_std must be >= 0"):
        TigerConfig(codebook_sizes=[8, 8], item_embedding_init_std=-1.0)
