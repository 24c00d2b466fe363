"""A count prior fused into the constrained beam search (`TransitionPrior`, `item_prior=`)."""

import math

import pytest
import torch
from test_modeling_tiger import make_model, make_tokenizer, random_histories

from hf_tiger import TransitionPrior
from hf_tiger.baselines import LastItemTransitionRecommender
from hf_tiger.models.tiger.generation_tiger import last_item_rows


def _counts(tok, seed=0, sources=12, per_source=4):
    """Random transition and popularity counts keyed by item id."""
    generator = torch.Generator().manual_seed(seed)
    items = tok.item_ids
    transitions = {}
    for source in torch.randperm(len(items), generator=generator)[:sources].tolist():
        successors = torch.randperm(len(items), generator=generator)[:per_source].tolist()
        counts = torch.randint(1, 6, (per_source,), generator=generator).tolist()
        transitions[items[source]] = dict(zip((items[s] for s in successors), counts))
    popularity = {item: int(torch.randint(0, 9, (1,), generator=generator)) for item in items}
    return transitions, popularity


def _prior_probability(transitions, popularity, items, last, target, backoff):
    """P(target | last) as the class docstring defines it."""
    pi = (popularity.get(target, 0) + 1) / (sum(popularity.values()) + len(items))
    successors = transitions.get(last, {})
    return (successors.get(target, 0) + backoff * pi) / (sum(successors.values()) + backoff)


def _item_log_probs(model, tok, history):
    """log p_TIGER(item | history) of every catalogue item, by teacher forcing."""
    items = tok.item_ids
    batch = tok.batch_encode_histories([history] * len(items), targets=items)
    with torch.no_grad():
        logits = model(**batch).logits.float()
    return torch.log_softmax(logits, -1).gather(-1, batch["labels"][..., None]).squeeze(-1).sum(-1)


@pytest.mark.parametrize("weight,backoff", [(0.7, 1.0), (2.0, 0.3)])
def test_the_fused_search_ranks_items_by_tiger_plus_weighted_log_prior(weight, backoff):
    tok = make_tokenizer(3, 40, levels=2, codebook=6)
    model = make_model(tok, seed=3)
    transitions, popularity = _counts(tok, seed=3)
    prior = TransitionPrior.from_counts(transitions, popularity, tok.item_ids, weight=weight, backoff=backoff)
    histories = random_histories(tok, 3, count=3)
    histories[0][-1] = next(iter(transitions))  # one last item with successors for sure
    items, scores = model.recommend(
        histories, tok, top_k=tok.catalogue_size, num_beams=tok.catalogue_size, return_scores=True, item_prior=prior
    )
    for history, ranked, ranked_scores in zip(histories, items, scores):
        tiger = _item_log_probs(model, tok, history)
        fused = {
            item: float(tiger[row])
            + weight * math.log(_prior_probability(transitions, popularity, tok.item_ids, history[-1], item, backoff))
            for row, item in enumerate(tok.item_ids)
        }
        assert sorted(ranked) == sorted(tok.item_ids)  # the whole catalogue, each item once
        expected = [fused[item] / tok.num_levels for item in ranked]
        assert ranked_scores == pytest.approx(expected, abs=1e-4)
        assert ranked_scores == sorted(ranked_scores, reverse=True)


def test_weight_zero_is_the_plain_search_and_a_strong_prior_recommends_the_counts():
    tok = make_tokenizer(4, 50, levels=3, codebook=5)
    model = make_model(tok, seed=4)
    counts = LastItemTransitionRecommender().fit(
        {
            "history": [[tok.item_ids[0]], [tok.item_ids[0]], [tok.item_ids[0]], [tok.item_ids[1]], [tok.item_ids[2]]],
            "target": [tok.item_ids[7], tok.item_ids[7], tok.item_ids[9], tok.item_ids[9], tok.item_ids[9]],
        }
    )
    histories = [[tok.item_ids[5], tok.item_ids[0]], [tok.item_ids[1]], [tok.item_ids[3]]]
    plain, plain_scores = model.recommend(histories, tok, top_k=5, return_scores=True)
    off = TransitionPrior.from_recommender(counts, tok, weight=0.0)
    assert model.recommend(histories, tok, top_k=5, return_scores=True, item_prior=off) == (plain, plain_scores)
    strong = TransitionPrior.from_recommender(counts, tok, weight=50.0, backoff=1e-3)
    fused = model.recommend(histories, tok, top_k=5, item_prior=strong)
    assert fused[0][:2] == [tok.item_ids[7], tok.item_ids[9]]  # 2 and 1 counts after item 0
    assert fused[1][0] == tok.item_ids[9]
    assert fused[2][0] == counts.recommend_one([tok.item_ids[3]], 1)[0]  # no successors: the most popular item


def test_last_item_rows_reads_the_history_before_eos_with_user_tokens_and_padding():
    tok = make_tokenizer(5, 30, levels=2, codebook=6)
    model = make_model(tok, seed=5)
    index = model._catalogue_index()
    histories = random_histories(tok, 5, count=4)
    expected = torch.tensor([tok.item_ids.index(h[-1]) for h in histories])
    for side in ("right", "left"):
        for users in (None, [1, 2, 3, 4]):
            batch = tok.batch_encode_histories(histories, user_ids=users, padding_side=side)
            assert torch.equal(last_item_rows(batch["input_ids"], index, tok.eos_token_id), expected)
    no_eos = torch.full((1, 5), tok.pad_token_id)
    assert last_item_rows(no_eos, index, tok.eos_token_id).tolist() == [-1]


def test_prior_errors_name_the_problem():
    tok = make_tokenizer(6, 20, levels=2, codebook=5)
    model = make_model(tok, seed=6)
    transitions, popularity = _counts(tok, seed=6)
    with pytest.raises(ValueError, match="weight must be"):
        TransitionPrior.from_counts(transitions, popularity, tok.item_ids, weight=-1.0)
    with pytest.raises(ValueError, match="backoff must be"):
        TransitionPrior.from_counts(transitions, popularity, tok.item_ids, backoff=0.0)
    with pytest.raises(RuntimeError, match="not fitted"):
        TransitionPrior.from_recommender(LastItemTransitionRecommender(), tok)
    smaller = TransitionPrior.from_counts(transitions, popularity, tok.item_ids[:-1])
    with pytest.raises(ValueError, match="catalogue has 20"):
        model.recommend([[tok.item_ids[0]]], tok, item_prior=smaller)
    prior = TransitionPrior.from_counts(transitions, popularity, tok.item_ids)
    with pytest.raises(ValueError, match="fast beam search only"):
        model.recommend([[tok.item_ids[0]]], tok, item_prior=prior, fast_beam_search=False)
    with pytest.raises(ValueError, match="successor_rows must be catalogue rows"):
        TransitionPrior(torch.tensor([0, 1, 1]), torch.tensor([5]), torch.tensor([1.0]), torch.ones(2))


def test_a_uniform_background_leaves_items_without_counts_to_tiger():
    tok = make_tokenizer(7, 36, levels=2, codebook=6)
    model = make_model(tok, seed=7)
    counts = LastItemTransitionRecommender().fit(
        {"history": [[tok.item_ids[0]], [tok.item_ids[2]], [tok.item_ids[2]]], "target": [tok.item_ids[4]] * 3}
    )
    uniform = TransitionPrior.from_recommender(counts, tok, weight=3.0, backoff=1.0, background="uniform")
    assert torch.allclose(uniform.popularity, torch.full((36,), 1 / 36))
    popular = TransitionPrior.from_recommender(counts, tok, weight=3.0, backoff=1.0)
    assert float(popular.popularity[4]) > float(popular.popularity[5])
    # a last item without successors: the uniform prior is flat, TIGER's own ranking and relative scores remain
    history = [[tok.item_ids[9]]]
    plain, plain_scores = model.recommend(history, tok, top_k=8, return_scores=True)
    fused, fused_scores = model.recommend(history, tok, top_k=8, return_scores=True, item_prior=uniform)
    assert fused == plain
    shift = [f - p for f, p in zip(fused_scores[0], plain_scores[0])]
    assert shift == pytest.approx([3.0 * math.log(1 / 36) / tok.num_levels] * 8, abs=1e-5)
    with pytest.raises(ValueError, match="background must be"):
        TransitionPrior.from_recommender(counts, tok, background="flat")


def test_with_settings_shares_the_tables_and_keeps_the_fingerprint():
    tok = make_tokenizer(8, 20, levels=2, codebook=5)
    transitions, popularity = _counts(tok, seed=8)
    prior = TransitionPrior.from_counts(transitions, popularity, tok.item_ids, weight=0.5, backoff=1.0)
    prior.catalogue_fingerprint = tok.catalogue_fingerprint()
    other = prior.with_settings(weight=2.0)
    assert (other.weight, other.backoff) == (2.0, 1.0) and (prior.weight, prior.backoff) == (0.5, 1.0)
    assert other.successor_rows is prior.successor_rows and other.catalogue_fingerprint == prior.catalogue_fingerprint
    assert prior.with_settings(backoff=3.0).backoff == 3.0
    with pytest.raises(ValueError, match="weight must be"):
        prior.with_settings(weight=-1.0)
