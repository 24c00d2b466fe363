"""Learned output vectors of semantic-ID prefixes (`TigerConfig.num_prefix_embeddings`)."""

import pytest
import torch
from test_item_embeddings import recommend_and_reload
from test_modeling_tiger import make_model, make_tokenizer, random_histories

from hf_tiger import TigerConfig, TigerForConditionalGeneration
from hf_tiger.hub.recommender import _model_size
from hf_tiger.models.tiger.modeling_tiger import semantic_id_prefix_keys


def _num_prefixes(tok):
    return len({tuple(row[:depth]) for row in tok.catalogue_token_ids().tolist() for depth in range(1, tok.num_levels + 1)})


def _with_prefix_vectors(tok, seed=0, **sizes):
    """A model with prefix output vectors, each set to a distinct random one."""
    model = make_model(tok, seed=seed, num_prefix_embeddings=_num_prefixes(tok), **sizes)
    with torch.no_grad():
        model.prefix_embeddings.weight[:-1].normal_(generator=torch.Generator().manual_seed(seed))
    return model


def _row_of_prefix(model, tokens):
    """The vector row of the prefix `tokens` (token ids)."""
    table = torch.tensor([list(tokens) + [model.config.level_offsets[-1]] * (model.config.num_levels - len(tokens))])
    key = semantic_id_prefix_keys(table, model.config.level_offsets, model.config.codebook_sizes)[len(tokens) - 1]
    row = int(torch.searchsorted(model.prefix_embedding_keys, key))
    assert int(model.prefix_embedding_keys[row]) == int(key)
    return row


def test_a_fresh_model_is_the_plain_tiger_and_every_prefix_owns_a_row():
    tok = make_tokenizer(1, 60, levels=3, codebook=8)
    count = _num_prefixes(tok)
    plain = make_model(tok, seed=1)
    with_prefixes = make_model(tok, seed=1, num_prefix_embeddings=count)
    assert not with_prefixes.prefix_embeddings.weight.any() and with_prefixes.prefix_embeddings.weight.shape[0] == count + 1
    missing, unexpected = with_prefixes.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["prefix_embedding_keys", "prefix_embeddings.weight"] and not unexpected
    batch = tok.batch_encode_histories(random_histories(tok, 1, count=4), targets=tok.item_ids[:4])
    with torch.no_grad():
        assert torch.equal(with_prefixes(**batch).logits, plain(**batch).logits)
    keys = with_prefixes.prefix_embedding_keys
    assert bool((keys[1:] > keys[:-1]).all())  # sorted, distinct
    rows = {_row_of_prefix(with_prefixes, row[:depth]) for row in tok.catalogue_token_ids().tolist() for depth in range(1, tok.num_levels + 1)}
    assert rows == set(range(count))


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_a_prefix_vector_scores_exactly_the_token_that_reaches_it(scale):
    """v[p] moves only the logit of the last token of p, at the position that extends p[:-1], by scale * h . v[p]."""
    tok = make_tokenizer(2, 70, levels=3, codebook=8)
    model = make_model(tok, seed=2, num_prefix_embeddings=_num_prefixes(tok), prefix_embedding_scale=scale)
    item = 11
    target = tok.catalogue_token_ids()[item].tolist()
    batch = tok.batch_encode_histories(random_histories(tok, 2, count=2), targets=[tok.item_ids[item]] * 2)
    with torch.no_grad():
        before = model(**batch, output_hidden_states=True)
    hidden = before.decoder_hidden_states[-1] * model.config.d_model**-0.5  # what lm_head reads (tied embeddings)
    for depth in range(1, tok.num_levels + 1):
        vector = torch.randn(model.config.d_model, generator=torch.Generator().manual_seed(depth))
        with torch.no_grad():
            model.prefix_embeddings.weight.zero_()
            model.prefix_embeddings.weight[_row_of_prefix(model, target[:depth])] = vector
            after = model(**batch).logits
        change = after - before.logits
        expected = torch.zeros_like(change)
        expected[:, depth - 1, target[depth - 1]] = scale * hidden[:, depth - 1] @ vector
        assert torch.allclose(change, expected, atol=1e-5), depth


def test_gradients_reach_the_target_prefixes_and_their_siblings_only():
    tok = make_tokenizer(3, 60, levels=2, codebook=8)
    model = make_model(tok, seed=3, num_prefix_embeddings=_num_prefixes(tok)).train()
    item = 20
    target = tok.catalogue_token_ids()[item].tolist()
    batch = tok.batch_encode_histories([tok.item_ids[5:8]], targets=[tok.item_ids[item]])
    model(**batch).loss.backward()
    touched = set(model.prefix_embeddings.weight.grad.abs().sum(-1).nonzero().flatten().tolist())
    table = tok.catalogue_token_ids().tolist()
    # the softmax of each level sees the children of the target's prefix at that level
    expected = {
        _row_of_prefix(model, row[: depth + 1])
        for depth in range(tok.num_levels)
        for row in table
        if row[:depth] == target[:depth]
    }
    assert touched == expected
    assert _row_of_prefix(model, target) in touched and model.prefix_embeddings.weight.shape[0] - 1 not in touched


def test_saves_loads_and_both_beam_searches_agree_after_a_cold_start(tmp_path):
    tok = make_tokenizer(4, 90, levels=3, codebook=8)
    model = _with_prefix_vectors(tok, seed=4).eval()
    histories, recs, loaded = recommend_and_reload(model, tok, tmp_path)
    assert loaded.config.num_prefix_embeddings == _num_prefixes(tok)
    assert f"output vectors for {_num_prefixes(tok)} semantic-ID prefixes" in _model_size(loaded.config)
    assert torch.equal(loaded.prefix_embeddings.weight, model.prefix_embeddings.weight)
    assert loaded.recommend(histories, tokenizer=tok, top_k=5, num_beams=8) == recs
    # a smaller catalogue keeps which prefixes own vectors, and the two searches still agree
    keys = loaded.prefix_embedding_keys.clone()
    loaded.set_catalogue(tok.catalogue_token_ids()[:40])
    assert torch.equal(loaded.prefix_embedding_keys, keys)
    inputs = tok.batch_encode_histories(histories)
    fast = loaded.generate(**inputs, num_beams=8, num_return_sequences=8, return_dict_in_generate=True)
    slow = loaded.generate(**inputs, num_beams=8, num_return_sequences=8, return_dict_in_generate=True,
                           fast_beam_search=False)
    assert torch.equal(fast.sequences, slow.sequences)
    assert torch.allclose(fast.sequences_scores, slow.sequences_scores, atol=1e-4)


def test_clear_errors():
    tok = make_tokenizer(5, 50, levels=2, codebook=8)
    config = TigerConfig.from_tokenizer(tok, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8,
                                        num_prefix_embeddings=_num_prefixes(tok) + 1)
    with pytest.raises(ValueError, match=f"output vectors for {_num_prefixes(tok) + 1} semantic-ID prefixes, but the"):
        TigerForConditionalGeneration(config).set_catalogue(tok.catalogue_token_ids())
    with pytest.raises(ValueError, match="num_prefix_embeddings must be >= 0"):
        TigerConfig(codebook_sizes=[8, 8], num_prefix_embeddings=-1)
    with pytest.raises(ValueError, match="prefix_embedding_scale must be finite"):
        TigerConfig(codebook_sizes=[8, 8], prefix_embedding_scale=float("nan"))
    model = _with_prefix_vectors(tok, seed=5)
    batch = tok.batch_encode_histories(random_histories(tok, 5, count=2), targets=tok.item_ids[:2])
    with pytest.raises(ValueError, match="not lm_head alone"):
        model.lm_head(torch.zeros(1, 1, model.config.d_model))
    embeds = model.get_input_embeddings()(model._shift_right(batch["labels"]))
    with pytest.raises(ValueError, match="needs the decoder token ids"):
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], decoder_inputs_embeds=embeds)
    with torch.no_grad():
        first = model(**batch, use_cache=True)
        with pytest.raises(ValueError, match="needs decoder_prefix_ids"):
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                  decoder_input_ids=batch["labels"][:, -1:], cache=first.past_key_values)


def test_vectors_can_be_added_to_a_saved_model(tmp_path):
    """A checkpoint without vectors loads with them: zero vectors, keys set by the next set_catalogue, same logits."""
    tok = make_tokenizer(6, 90, levels=3, codebook=8)
    saved = make_model(tok, seed=6)
    saved.save_pretrained(tmp_path)
    grown = TigerForConditionalGeneration.from_pretrained(
        tmp_path, num_prefix_embeddings=_num_prefixes(tok), num_item_embeddings=tok.catalogue_size
    ).eval()
    assert bool((grown.prefix_embedding_keys == -1).all()) and bool((grown.item_embedding_keys == -1).all())
    grown.set_catalogue(tok)
    assert bool((grown.prefix_embedding_keys >= 0).all()) and bool((grown.item_embedding_keys >= 0).all())
    batch = tok.batch_encode_histories(random_histories(tok, 6, count=3), targets=tok.item_ids[:3])
    with torch.no_grad():
        assert torch.equal(grown(**batch).logits, saved(**batch).logits)
