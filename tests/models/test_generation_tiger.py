"""Tests for trie-constrained decoding: CatalogueIndex, TrieConstrainedLogitsProcessor and the fast beam search.

The model is a plain tiny `T5ForConditionalGeneration` (TIGER is a T5 subclass, decoding only needs T5's modules)
with a random catalogue laid out like the SemanticIDTokenizer's vocabulary: 0 pad / decoder start, 1 eos, 2 unk,
user buckets, then one token range per level.
"""

import pytest
import torch
from transformers import LogitsProcessorList, T5Config, T5ForConditionalGeneration

from hf_tiger.models.tiger.generation_tiger import (
    CatalogueIndex,
    TrieConstrainedLogitsProcessor,
    catalogue_index_for,
    tiger_beam_search,
)

NUM_USER_BUCKETS = 7
PAD, EOS = 0, 1


def make_catalogue(num_items, codebook_sizes=(6, 5, 7), seed=0):
    """Random distinct semantic IDs + collision level, as token ids. Returns (catalogue [N, L], vocab_size)."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.stack(
        [torch.randint(0, size, (num_items,), generator=generator) for size in codebook_sizes], 1
    )
    # collision level: rank of each item among the items sharing its codes
    _, inverse = torch.unique(codes, dim=0, return_inverse=True)
    order = torch.argsort(inverse, stable=True)
    sorted_groups = inverse[order]
    collision = torch.empty(num_items, dtype=torch.long)
    collision[order] = torch.arange(num_items) - torch.searchsorted(sorted_groups, sorted_groups)
    codes = torch.cat([codes, collision[:, None]], 1)
    sizes = [*codebook_sizes, int(collision.max()) + 1]
    offsets = torch.tensor([3 + NUM_USER_BUCKETS + sum(sizes[:i]) for i in range(len(sizes))])
    return codes + offsets, 3 + NUM_USER_BUCKETS + sum(sizes)


def make_model(vocab_size, seed=0, **overrides):
    torch.manual_seed(seed)
    kwargs = dict(
        vocab_size=vocab_size,
        d_model=32,
        d_kv=8,
        num_heads=4,
        d_ff=48,
        num_layers=2,
        num_decoder_layers=2,
        dropout_rate=0.0,
        decoder_start_token_id=PAD,
        pad_token_id=PAD,
        eos_token_id=EOS,
    )
    kwargs.update(overrides)
    return T5ForConditionalGeneration(T5Config(**kwargs)).eval()


def make_inputs(catalogue, batch_size, seed=0, max_items=4):
    """Histories as the tokenizer encodes them: user token, item tokens, eos; right-padded."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(batch_size):
        n = int(torch.randint(1, max_items + 1, (1,), generator=generator))
        items = catalogue[torch.randint(0, len(catalogue), (n,), generator=generator)].reshape(-1)
        user = torch.randint(3, 3 + NUM_USER_BUCKETS, (1,), generator=generator)
        rows.append(torch.cat([user, items, torch.tensor([EOS])]))
    length = max(len(r) for r in rows)
    input_ids = torch.full((batch_size, length), PAD)
    attention_mask = torch.zeros((batch_size, length), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = r
        attention_mask[i, : len(r)] = 1
    return input_ids, attention_mask


def brute_force_mask(catalogue, prefix, vocab_size):
    mask = torch.zeros((len(prefix), vocab_size), dtype=torch.bool)
    rows = [tuple(r) for r in catalogue.tolist()]
    num_levels = catalogue.shape[1]
    for i, p in enumerate(prefix.tolist()):
        t = len(p)
        head = p[: min(t, num_levels)]
        matching = [r for r in rows if list(r[: len(head)]) == head]
        if not matching:
            continue
        if t < num_levels:
            mask[i, sorted({r[t] for r in matching})] = True
        elif t == num_levels:
            mask[i, EOS] = True
        else:
            mask[i, [EOS, PAD]] = True
    return mask


def transformers_beam_search(
    model, input_ids, attention_mask, num_levels, num_beams, num_return_sequences, **kw
):
    processor = kw.pop("processor", None)
    out = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        num_beams=num_beams,
        num_return_sequences=num_return_sequences,
        max_new_tokens=num_levels + int(kw.pop("append_eos", False)),
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
        logits_processor=LogitsProcessorList([processor]) if processor is not None else None,
        **kw,
    )
    if num_beams > 1:
        return out.sequences, out.sequences_scores
    # greedy search keeps no sequence score: recompute it by teacher forcing (a beam of width 1 scores the same)
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=out.sequences[:, :-1]
    ).logits
    token_log_probs = logits.float().log_softmax(-1).gather(-1, out.sequences[:, 1:, None])[..., 0]
    generated_length = out.sequences.shape[1] - 1
    return out.sequences, token_log_probs.sum(-1) / generated_length ** kw.get("length_penalty", 1.0)


def real_results(sequences, scores, batch_size):
    """Per input, the (sequence, score) pairs that are real hypotheses (not -inf or transformers' -1e9 filler)."""
    sequences = sequences.view(batch_size, -1, sequences.shape[-1])
    scores = scores.view(batch_size, -1)
    return [
        [(tuple(s.tolist()), float(v.detach())) for s, v in zip(sequences[b], scores[b]) if v > -1e8]
        for b in range(batch_size)
    ]


def assert_same_results(reference, ours, atol=1e-4, near_tie=1e-5):
    """Same items in the same order, scores within `atol`. A rank whose items differ is accepted only as a
    near-tie (both scores at that rank within `near_tie`): float rounding of an equivalent computation can swap
    items whose scores agree to ~1e-6, never change a clear ranking."""
    for ref_row, our_row in zip(reference, ours):
        assert len(our_row) == len(ref_row)
        for (ref_item, ref_score), (our_item, our_score) in zip(ref_row, our_row):
            assert abs(ref_score - our_score) <= (atol if our_item == ref_item else near_tie)


def assert_valid_distinct(sequences, scores, catalogue, batch_size):
    items = {tuple(r) for r in catalogue.tolist()}
    for row in real_results(sequences, scores, batch_size):
        generated = [s[1 : 1 + catalogue.shape[1]] for s, _ in row]
        assert all(g in items for g in generated)
        assert len(set(generated)) == len(generated)


# ----------------------------------------------------------------------------------------------------------------
# CatalogueIndex / processor
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_dense_levels", [0, 2, 4])
@pytest.mark.parametrize("num_items", [1, 9, 150])
def test_mask_equals_brute_force(num_items, num_dense_levels):
    catalogue, vocab_size = make_catalogue(num_items, seed=num_items)
    index = CatalogueIndex(catalogue, vocab_size, num_dense_levels=num_dense_levels)
    generator = torch.Generator().manual_seed(1)
    num_levels = catalogue.shape[1]
    for t in range(num_levels + 2):
        valid = catalogue[torch.randint(0, num_items, (40,), generator=generator)]
        if t > num_levels:
            valid = torch.cat([valid, torch.full((40, t - num_levels), EOS)], 1)
        valid = valid[:, :t]
        # corrupt some prefixes: a random token (often out of the level's range) or a valid-range wrong code
        corrupted = valid.clone()
        if t > 0:
            position = torch.randint(0, t, (40,), generator=generator)
            corrupted[torch.arange(40), position] = torch.randint(0, vocab_size, (40,), generator=generator)
        prefix = torch.cat([valid, corrupted]) if t > 0 else torch.zeros((3, 0), dtype=torch.long)
        assert torch.equal(index.allowed_tokens_mask(prefix), brute_force_mask(catalogue, prefix, vocab_size))


def test_index_structure_invariants():
    catalogue, vocab_size = make_catalogue(300, codebook_sizes=(4, 9, 9))
    index = CatalogueIndex(catalogue, vocab_size, num_dense_levels=1)
    assert index.dense_child[0] is not None and index.dense_child[1] is None
    # every catalogue row is walkable and maps back to itself
    node = index.prefix_nodes(catalogue)
    assert (node >= 0).all()
    assert torch.equal(index.leaf_to_row[node], torch.arange(len(catalogue)))
    assert index.num_nodes[-1] == len(catalogue)
    # CSR children ranges partition the next level
    for depth in range(index.num_levels):
        row_ptr = index.row_ptr[depth]
        assert row_ptr[0] == 0 and row_ptr[-1] == index.num_nodes[depth + 1]
        assert (row_ptr[1:] >= row_ptr[:-1]).all()


def test_index_rejects_bad_catalogues():
    with pytest.raises(ValueError, match="vocab_size"):
        CatalogueIndex(torch.tensor([[3, 40]]), vocab_size=10)
    with pytest.raises(ValueError, match="non-empty"):
        CatalogueIndex(torch.zeros((0, 3), dtype=torch.long), vocab_size=10)
    with pytest.raises(ValueError, match="vocab_size is required"):
        TrieConstrainedLogitsProcessor(torch.tensor([[3, 4]]))


def test_processor_masks_only_disallowed_scores():
    catalogue, vocab_size = make_catalogue(40)
    processor = TrieConstrainedLogitsProcessor(catalogue, vocab_size)
    input_ids = torch.cat(
        [torch.zeros((5, 1), dtype=torch.long), catalogue[:5, :2]], 1
    )  # decoder start + 2 codes
    scores = torch.randn(5, vocab_size)
    out = processor(input_ids, scores.clone())
    allowed = brute_force_mask(catalogue, input_ids[:, 1:], vocab_size)
    assert torch.equal(out[allowed], scores[allowed])
    assert torch.isneginf(out[~allowed]).all()
    # a wider score matrix (padded embedding) is masked to the same allowed set
    wide = processor(input_ids, torch.randn(5, vocab_size + 5))
    assert torch.isneginf(wide[:, vocab_size:]).all()


def test_catalogue_index_cache_is_reused_and_invalidated():
    catalogue, vocab_size = make_catalogue(30)

    class Owner:
        pass

    owner = Owner()
    first = catalogue_index_for(catalogue, vocab_size, cache_owner=owner)
    assert catalogue_index_for(catalogue, vocab_size, cache_owner=owner) is first
    catalogue[0, -1] = catalogue[0, -1]  # an in-place write bumps the tensor version
    assert catalogue_index_for(catalogue, vocab_size, cache_owner=owner) is not first


@pytest.mark.parametrize("num_items,num_beams", [(60, 6), (4, 8)])
def test_processor_equals_prefix_allowed_tokens_fn(num_items, num_beams):
    catalogue, vocab_size = make_catalogue(num_items, seed=3)
    model = make_model(vocab_size)
    input_ids, attention_mask = make_inputs(catalogue, 3)
    num_levels = catalogue.shape[1]
    trie, items = {}, {tuple(r) for r in catalogue.tolist()}
    for row in catalogue.tolist():
        for t in range(num_levels):
            trie.setdefault(tuple(row[:t]), set()).add(row[t])

    def prefix_allowed_tokens_fn(batch_id, sent):
        prefix = tuple(sent[1:].tolist())
        if len(prefix) < num_levels:
            return sorted(
                trie.get(prefix, {PAD})
            )  # invalid prefix (a -inf filler beam): anything, it stays -inf
        return [EOS] if prefix[:num_levels] in items else [PAD]

    processor = TrieConstrainedLogitsProcessor(catalogue, vocab_size)
    ours = transformers_beam_search(
        model, input_ids, attention_mask, num_levels, num_beams, num_beams, processor=processor
    )
    reference = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        num_beams=num_beams,
        num_return_sequences=num_beams,
        max_new_tokens=num_levels,
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
        prefix_allowed_tokens_fn=prefix_allowed_tokens_fn,
    )
    assert torch.equal(ours[0], reference.sequences)
    torch.testing.assert_close(ours[1], reference.sequences_scores)
    assert_valid_distinct(*ours, catalogue, 3)


# ----------------------------------------------------------------------------------------------------------------
# fast beam search vs transformers' beam search with the processor
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_setup():
    """A tiny T5 trained for a few dozen steps to recall the first history item (peaked, input-dependent)."""
    catalogue, vocab_size = make_catalogue(120, seed=11)
    model = make_model(vocab_size, seed=5).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is as fast, and robust on a crowded machine
    for step in range(25):
        input_ids, attention_mask = make_inputs(catalogue, 12, seed=100 + step)
        labels = input_ids[:, 1 : 1 + catalogue.shape[1]].contiguous()
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)
    return catalogue, vocab_size, model.eval()


@pytest.mark.parametrize(
    "num_items,batch_size,num_beams,num_return_sequences",
    [(80, 1, 1, 1), (80, 3, 5, 5), (80, 4, 12, 7), (500, 2, 20, 10), (5, 3, 8, 8), (1, 2, 3, 3)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_beam_search_equals_transformers(num_items, batch_size, num_beams, num_return_sequences, seed):
    catalogue, vocab_size = make_catalogue(num_items, seed=seed)
    model = make_model(vocab_size, seed=seed)
    index = CatalogueIndex(catalogue, vocab_size)
    input_ids, attention_mask = make_inputs(catalogue, batch_size, seed=seed)
    num_levels = catalogue.shape[1]
    reference = transformers_beam_search(
        model,
        input_ids,
        attention_mask,
        num_levels,
        num_beams,
        num_return_sequences,
        processor=TrieConstrainedLogitsProcessor(index),
    )
    fast = tiger_beam_search(
        model,
        input_ids,
        attention_mask,
        index=index,
        num_beams=num_beams,
        num_return_sequences=num_return_sequences,
    )
    assert fast.sequences.shape == (batch_size * num_return_sequences, 1 + num_levels)
    assert_same_results(
        real_results(*reference, batch_size), real_results(fast.sequences, fast.sequences_scores, batch_size)
    )
    assert_valid_distinct(fast.sequences, fast.sequences_scores, catalogue, batch_size)


@pytest.mark.parametrize("length_penalty,append_eos", [(1.0, True), (0.0, False), (2.5, False), (-1.0, True)])
def test_fast_beam_search_equals_transformers_trained(trained_setup, length_penalty, append_eos):
    catalogue, vocab_size, model = trained_setup
    index = CatalogueIndex(catalogue, vocab_size)
    input_ids, attention_mask = make_inputs(catalogue, 6, seed=7)
    reference = transformers_beam_search(
        model,
        input_ids,
        attention_mask,
        catalogue.shape[1],
        10,
        10,
        processor=TrieConstrainedLogitsProcessor(index),
        length_penalty=length_penalty,
        append_eos=append_eos,
    )
    fast = tiger_beam_search(
        model,
        input_ids,
        attention_mask,
        index=index,
        num_beams=10,
        length_penalty=length_penalty,
        append_eos=append_eos,
    )
    if append_eos:
        assert (fast.sequences[:, -1] == EOS).all()
    assert_same_results(real_results(*reference, 6), real_results(fast.sequences, fast.sequences_scores, 6))
    # not a vacuous comparison: the trained model separates its candidates clearly
    log_probs = fast.sequences_scores.view(6, 10) * (fast.sequences.shape[1] - 1) ** length_penalty
    assert ((log_probs[:, 0] - log_probs[:, -1]) > 0.1).all()


@pytest.mark.parametrize(
    "overrides",
    [
        dict(feed_forward_proj="gated-gelu"),
        dict(tie_word_embeddings=False),
        dict(num_layers=3, num_decoder_layers=1, relative_attention_num_buckets=4),
    ],
)
def test_fast_beam_search_t5_variants(overrides):
    catalogue, vocab_size = make_catalogue(70, seed=4)
    model = make_model(vocab_size, seed=4, **overrides)
    index = CatalogueIndex(catalogue, vocab_size)
    input_ids, attention_mask = make_inputs(catalogue, 3, seed=4)
    reference = transformers_beam_search(
        model,
        input_ids,
        attention_mask,
        catalogue.shape[1],
        6,
        4,
        processor=TrieConstrainedLogitsProcessor(index),
    )
    fast = tiger_beam_search(
        model, input_ids, attention_mask, index=index, num_beams=6, num_return_sequences=4
    )
    assert_same_results(real_results(*reference, 3), real_results(fast.sequences, fast.sequences_scores, 3))


def test_fast_beam_search_calls_non_plain_projections():
    """q/k/v layers that are not plain nn.Linear (adapters, quantisation wrappers) run through their own forward."""
    catalogue, vocab_size = make_catalogue(70, seed=9)
    model = make_model(vocab_size, seed=9)
    calls = []

    class CountingLinear(torch.nn.Linear):
        def forward(self, x):
            calls.append(1)
            return super().forward(x)

    for block in model.decoder.block:
        attention = block.layer[0].SelfAttention
        wrapped = CountingLinear(attention.q.in_features, attention.q.out_features, bias=False)
        wrapped.weight = attention.q.weight
        attention.q = wrapped
    index = CatalogueIndex(catalogue, vocab_size)
    input_ids, attention_mask = make_inputs(catalogue, 2, seed=9)
    reference = transformers_beam_search(
        model,
        input_ids,
        attention_mask,
        catalogue.shape[1],
        5,
        5,
        processor=TrieConstrainedLogitsProcessor(index),
    )
    calls.clear()
    fast = tiger_beam_search(model, input_ids, attention_mask, index=index, num_beams=5)
    assert len(calls) == len(model.decoder.block) * catalogue.shape[1]
    assert_same_results(real_results(*reference, 2), real_results(fast.sequences, fast.sequences_scores, 2))


def test_small_catalogue_pads_results():
    catalogue, vocab_size = make_catalogue(3, seed=8)
    model = make_model(vocab_size)
    input_ids, attention_mask = make_inputs(catalogue, 2)
    fast = tiger_beam_search(
        model, input_ids, attention_mask, index=CatalogueIndex(catalogue, vocab_size), num_beams=8
    )
    rows = fast.catalogue_indices
    assert rows.shape == (2, 8)
    # the 3 items first (each once), then padding rows: pad tokens, -inf score, index -1
    assert sorted(rows[:, :3].reshape(-1).tolist()) == [0, 0, 1, 1, 2, 2]
    assert (rows[:, 3:] == -1).all()
    scores = fast.sequences_scores.view(2, 8)
    assert torch.isfinite(scores[:, :3]).all() and torch.isneginf(scores[:, 3:]).all()
    assert (fast.sequences.view(2, 8, -1)[:, 3:] == PAD).all()
    assert torch.equal(fast.sequences.view(2, 8, -1)[:, :3, 1:], catalogue[rows[:, :3]])


def test_fast_beam_search_accepts_encoder_outputs_and_checks_arguments():
    catalogue, vocab_size = make_catalogue(50)
    model = make_model(vocab_size)
    index = CatalogueIndex(catalogue, vocab_size)
    input_ids, attention_mask = make_inputs(catalogue, 2)
    direct = tiger_beam_search(model, input_ids, attention_mask, index=index, num_beams=4)
    encoder_outputs = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
    reused = tiger_beam_search(
        model, attention_mask=attention_mask, encoder_outputs=encoder_outputs, index=index, num_beams=4
    )
    assert torch.equal(direct.sequences, reused.sequences)
    with pytest.raises(ValueError, match="num_return_sequences"):
        tiger_beam_search(model, input_ids, attention_mask, index=index, num_beams=4, num_return_sequences=5)
    with pytest.raises(ValueError, match="input_ids or encoder_outputs"):
        tiger_beam_search(model, index=index, num_beams=4)


def test_fast_beam_search_bf16_returns_valid_items():
    catalogue, vocab_size = make_catalogue(200, seed=6)
    model = make_model(vocab_size, seed=6)
    index = CatalogueIndex(catalogue, vocab_size)
    input_ids, attention_mask = make_inputs(catalogue, 3, seed=6)
    fp32 = tiger_beam_search(model, input_ids, attention_mask, index=index, num_beams=10)
    bf16 = tiger_beam_search(model.to(torch.bfloat16), input_ids, attention_mask, index=index, num_beams=10)
    assert bf16.sequences_scores.dtype == torch.float32
    assert_valid_distinct(bf16.sequences, bf16.sequences_scores, catalogue, 3)
    # bf16 rounding perturbs the scores a little, not the scale: the best scores stay close to fp32's
    assert torch.isfinite(bf16.sequences_scores).all()
    torch.testing.assert_close(
        bf16.sequences_scores.view(3, 10)[:, 0], fp32.sequences_scores.view(3, 10)[:, 0], atol=0.3, rtol=0
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fast_beam_search_cuda_matches_cpu():
    catalogue, vocab_size = make_catalogue(300, seed=2)
    model = make_model(vocab_size, seed=2)
    index = CatalogueIndex(catalogue, vocab_size)
    input_ids, attention_mask = make_inputs(catalogue, 4, seed=2)
    cpu = tiger_beam_search(model, input_ids, attention_mask, index=index, num_beams=10)
    model.cuda()
    processor = TrieConstrainedLogitsProcessor(index)
    gpu = tiger_beam_search(
        model, input_ids.cuda(), attention_mask.cuda(), index=index.to("cuda"), num_beams=10
    )
    assert torch.equal(gpu.sequences.cpu(), cpu.sequences)
    torch.testing.assert_close(gpu.sequences_scores.cpu(), cpu.sequences_scores, atol=1e-4, rtol=0)
    reference = transformers_beam_search(
        model, input_ids.cuda(), attention_mask.cuda(), catalogue.shape[1], 10, 10, processor=processor
    )
    assert torch.equal(reference[0].cpu(), cpu.sequences)


# ----------------------------------------------------------------------------------------------------------------
# wiring: TigerForConditionalGeneration.generate() / recommend() use the fast search by default
# ----------------------------------------------------------------------------------------------------------------


def make_tiger(num_items, seed=0):
    from hf_tiger import SemanticIDTokenizer, TigerConfig, TigerForConditionalGeneration

    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 6, (num_items, 3), generator=generator)
    tok = SemanticIDTokenizer.from_codes(
        codes, item_ids=list(range(num_items)), codebook_size=6, num_user_buckets=7
    )
    torch.manual_seed(seed)
    config = TigerConfig.from_tokenizer(
        tok, d_model=32, d_ff=48, num_layers=2, num_heads=4, d_kv=8, dropout_rate=0.0
    )
    model = TigerForConditionalGeneration(config)
    model.set_catalogue(tok.catalogue_token_ids())
    return tok, model.eval()


@pytest.mark.parametrize("num_items,num_beams,num_return_sequences", [(150, 12, 6), (4, 10, 10), (60, 1, 1)])
def test_tiger_generate_fast_equals_fallback(num_items, num_beams, num_return_sequences, monkeypatch):
    from hf_tiger.models.tiger import modeling_tiger

    tok, model = make_tiger(num_items)
    histories = [[tok.item_ids[i % num_items] for i in range(k, k + 3 + k)] for k in range(4)]
    batch = tok.batch_encode_histories(histories, return_tensors="pt")
    kwargs = dict(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        num_beams=num_beams,
        num_return_sequences=num_return_sequences,
        return_dict_in_generate=True,
        output_scores=True,
    )
    calls = []
    monkeypatch.setattr(
        modeling_tiger, "tiger_beam_search", lambda *a, **k: calls.append(1) or tiger_beam_search(*a, **k)
    )
    fast = model.generate(**kwargs)
    assert calls, "generate() did not use the fast beam search by default"
    slow = model.generate(**kwargs, fast_beam_search=False)
    assert len(calls) == 1
    assert torch.equal(fast.sequences, slow.sequences)
    torch.testing.assert_close(fast.sequences_scores, slow.sequences_scores, atol=1e-4, rtol=0)
    # extra logits processors are only supported by transformers' search: generate() falls back by itself
    model.generate(**kwargs, logits_processor=LogitsProcessorList([lambda ids, scores: scores]))
    assert len(calls) == 1


def test_tiger_recommend_fast_equals_fallback():
    tok, model = make_tiger(90, seed=3)
    histories = [[1, 5, 7], [42], [3, 3, 8, 13, 21]]
    fast_items, fast_scores = model.recommend(
        histories, tokenizer=tok, top_k=5, num_beams=8, return_scores=True
    )
    slow_items, slow_scores = model.recommend(
        histories, tokenizer=tok, top_k=5, num_beams=8, return_scores=True, fast_beam_search=False
    )
    assert fast_items == slow_items
    torch.testing.assert_close(torch.tensor(fast_scores), torch.tensor(slow_scores), atol=1e-4, rtol=0)
