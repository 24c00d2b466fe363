"""A causal TIGER encoder (`TigerConfig.causal_encoder`) and training on user sequences with one encoder pass."""

import pytest
import torch
from test_modeling_tiger import make_model, make_tokenizer, random_histories

from hf_tiger import TigerForConditionalGeneration
from hf_tiger.hub.recommender import _model_size
from hf_tiger.training.data import TigerDataCollator, encode_user_sequences

ATTENTION = ["sdpa", "eager"]


def _sequence_batch(tok, sequences, user_ids=None):
    """Collated user-sequence windows (every item after the first is a target) and the equivalent rows."""
    batch = {
        "user_id": user_ids or [None] * len(sequences),
        "items": sequences,
        "first_target": [1] * len(sequences),
    }
    encoded = encode_user_sequences(batch, tok, use_user_tokens=user_ids is not None)
    features = [dict(zip(encoded, values)) for values in zip(*encoded.values())]
    collated = TigerDataCollator(pad_token_id=tok.pad_token_id)(features)
    histories, targets, users = [], [], []
    for index, sequence in enumerate(sequences):
        for t in range(1, len(sequence)):
            histories.append(sequence[:t])
            targets.append(sequence[t])
            users.append(None if user_ids is None else user_ids[index])
    rows = tok.batch_encode_histories(histories, user_ids=None if user_ids is None else users, targets=targets)
    return collated, rows


@pytest.mark.parametrize("attention", ATTENTION)
def test_prefix_encoding_does_not_see_later_items(attention):
    tok = make_tokenizer(3, 60, levels=2, codebook=8)
    history = random_histories(tok, 3, count=1, max_len=6)[0] + tok.item_ids[:3]
    short = tok.batch_encode_histories([history[:2]])["input_ids"][:, :-1]  # two items, no </s>
    full = tok.batch_encode_histories([history])["input_ids"]
    outputs = {}
    for causal in (True, False):
        model = make_model(tok, seed=3, causal_encoder=causal)
        model.config._attn_implementation = attention
        with torch.no_grad():
            prefix = model.get_encoder()(input_ids=short).last_hidden_state
            whole = model.get_encoder()(input_ids=full).last_hidden_state[:, : short.shape[1]]
        outputs[causal] = (prefix - whole).abs().max().item()
    assert outputs[True] < 1e-5
    assert outputs[False] > 1e-3  # the bidirectional encoder does see them


@pytest.mark.parametrize("attention", ATTENTION)
@pytest.mark.parametrize("with_users", [False, True])
@pytest.mark.parametrize("vectors", [None, "items", "prefixes"])
def test_one_pass_over_user_sequences_equals_the_rows(attention, with_users, vectors):
    tok = make_tokenizer(5, 80, levels=3, codebook=8)
    generator = torch.Generator().manual_seed(5)
    sequences = [
        [tok.item_ids[int(i)] for i in torch.randint(0, tok.catalogue_size, (length,), generator=generator)]
        for length in (6, 2, 4)
    ]
    user_ids = ["u1", "u2", "u3"] if with_users else None
    collated, rows = _sequence_batch(tok, sequences, user_ids)
    levels = tok.num_levels
    assert collated["labels"].shape == (3, 5 * levels)  # each sequence's targets packed into one decoder row
    packed = collated["labels"].view(3, 5, levels)
    assert torch.equal(packed[0], rows["labels"][:5])
    assert torch.equal(packed[1, :1], rows["labels"][5:6]) and (packed[1, 1:] == -100).all()
    assert torch.equal(packed[2, :3], rows["labels"][6:9]) and (packed[2, 3:] == -100).all()
    extra = {}
    if vectors == "items":  # learned item-ID vectors (TigerConfig.num_item_embeddings) depend on the item alone
        extra = {"num_item_embeddings": tok.catalogue_size}
    elif vectors == "prefixes":  # output vectors of semantic-ID prefixes: each packed target restarts its prefix
        table = tok.catalogue_token_ids().tolist()
        extra = {"num_prefix_embeddings": len({tuple(row[:d]) for row in table for d in range(1, levels + 1)})}
    model = make_model(tok, seed=5, causal_encoder=True, **extra)
    if vectors:
        weight = model.item_embeddings.weight if vectors == "items" else model.prefix_embeddings.weight
        with torch.no_grad():
            weight[:-1].normal_(generator=torch.Generator().manual_seed(5))
    model.config._attn_implementation = attention
    model.train()
    grads = []
    losses = []
    for inputs in (collated, rows):
        model.zero_grad()
        output = model(**inputs)
        output.loss.backward()  # the mean over all label tokens: the same tokens in both
        losses.append(output.loss.item())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[1]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-5), name
    # the logits of each packed target are those of its row
    with torch.no_grad():
        packed_logits = model(**collated).logits.view(3, 5, levels, -1)
        row_logits = model(**rows).logits
    assert torch.allclose(packed_logits[0], row_logits[:5], atol=1e-5)
    assert torch.allclose(packed_logits[2, :3], row_logits[6:9], atol=1e-5)


def test_user_sequences_need_a_causal_encoder():
    tok = make_tokenizer(6, 40, levels=2, codebook=8)
    collated, _ = _sequence_batch(tok, [tok.item_ids[:4]])
    model = make_model(tok, seed=6)
    with pytest.raises(ValueError, match="needs a causal encoder"):
        model(**collated)
    causal = make_model(tok, seed=6, causal_encoder=True)
    with pytest.raises(ValueError, match="cross_attention_mask has shape"):
        causal(**{**collated, "cross_attention_mask": collated["cross_attention_mask"][:, :, :-1]})
    with pytest.raises(ValueError, match="needs input_ids, decoder_input_ids"):
        causal(**{k: v for k, v in collated.items() if k != "decoder_attention_mask"})
    causal.config._attn_implementation = "flex_attention"
    with pytest.raises(ValueError, match="'sdpa' and 'eager'"):
        causal(**collated)


def test_causal_model_saves_loads_and_recommends(tmp_path):
    tok = make_tokenizer(8, 120, levels=2, codebook=16)
    model = make_model(tok, seed=8, causal_encoder=True)
    histories = random_histories(tok, 8, count=5)
    fast = model.recommend(histories, tokenizer=tok, top_k=5, num_beams=8)
    assert model.recommend(histories, tokenizer=tok, top_k=5, num_beams=8, fast_beam_search=False) == fast
    model.save_pretrained(tmp_path)
    loaded = TigerForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.causal_encoder is True
    assert "causal encoder" in _model_size(loaded.config) and "causal" not in _model_size(make_model(tok).config)
    batch = tok.batch_encode_histories(histories, targets=tok.item_ids[:5])
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)
    assert loaded.recommend(histories, tokenizer=tok, top_k=5, num_beams=8) == fast
    # a bidirectional model with the same weights ranks differently: the flag is what was saved
    bidirectional = make_model(tok, seed=8)
    with torch.no_grad():
        assert not torch.allclose(bidirectional(**batch).logits, model(**batch).logits)


@pytest.mark.parametrize("attention", ATTENTION)
def test_user_sequences_train_under_cpu_bf16_autocast(attention):
    """The path a CPU with AMX takes by default: bf16 autocast around the packed forward."""
    tok = make_tokenizer(7, 80, levels=3, codebook=8)
    collated, rows = _sequence_batch(tok, [tok.item_ids[:6], tok.item_ids[10:12]], ["a", "b"])
    model = make_model(tok, seed=7, causal_encoder=True).train()
    model.config._attn_implementation = attention
    with torch.autocast("cpu", dtype=torch.bfloat16):
        packed, single = model(**collated).loss, model(**rows).loss
    packed.backward()
    assert torch.isfinite(packed) and packed.item() == pytest.approx(single.item(), abs=2e-2)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
