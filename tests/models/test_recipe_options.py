"""Recipe options of TigerForConditionalGeneration: embeddings from the RQ-VAE codebooks, attention dropout,
and the CPU dropout (`TigerDropout`); each changes the model as stated and survives save/load."""

import pytest
import torch
from test_modeling_tiger import make_model, make_tokenizer
from torch import nn
from transformers.models.t5.modeling_t5 import T5Attention

from hf_tiger import RQVAEConfig, RQVAEModel, TigerForConditionalGeneration
from hf_tiger.models.tiger.modeling_tiger import TigerDropout


def _codebooks(levels=2, size=8, dim=5, seed=0):
    return torch.randn(levels, size, dim, generator=torch.Generator().manual_seed(seed))


def test_codebook_init_replaces_code_rows_and_keeps_their_geometry():
    tok = make_tokenizer(0, 40, levels=2, codebook=8)
    model = make_model(tok)
    before = model.get_input_embeddings().weight.detach().clone()
    codebooks = _codebooks()
    assert model.init_semantic_id_embeddings_(codebooks, seed=3) == 2
    after = model.get_input_embeddings().weight.detach()
    offsets, sizes = model.config.level_offsets, model.config.codebook_sizes
    changed = (after != before).any(dim=1)
    for level in range(2):
        rows = slice(offsets[level], offsets[level] + sizes[level])
        assert changed[rows].all()
        # the same linear map for every code: pairwise differences are those of the codebook, projected
        projection = torch.randn(5, model.config.d_model, generator=torch.Generator().manual_seed(3))
        centred = codebooks[level] @ projection
        centred = centred - centred.mean(0)
        ratio = after[rows] / centred
        assert torch.allclose(ratio, ratio[0, 0].expand_as(ratio), rtol=1e-4)
        # rescaled to the spread of T5's initialisation
        assert after[rows].std() == pytest.approx(before[rows].std().item(), rel=1e-4)
    collision = slice(offsets[2], offsets[2] + sizes[2])
    assert not changed[collision].any() and not changed[: offsets[0]].any()
    # tied output embeddings follow (T5 ties them)
    assert torch.equal(model.get_output_embeddings().weight, model.get_input_embeddings().weight)


def test_codebook_init_untied_lm_head_gets_the_same_rows():
    tok = make_tokenizer(1, 30, levels=2, codebook=8)
    model = make_model(tok, tie_word_embeddings=False)
    model.init_semantic_id_embeddings_(_codebooks())
    rows = slice(model.config.level_offsets[0], model.config.level_offsets[0] + 8)
    inputs, outputs = model.get_input_embeddings().weight[rows], model.get_output_embeddings().weight[rows]
    assert torch.allclose(inputs / inputs.norm(), outputs / outputs.norm(), atol=1e-6)


def test_codebook_init_errors_name_the_problem():
    tok = make_tokenizer(0, 40, levels=2, codebook=8)
    model = make_model(tok)
    with pytest.raises(ValueError, match="codebook size 4 does not match the model's level 0"):
        model.init_semantic_id_embeddings_(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="4 codebook levels but the model has only 3 levels"):
        model.init_semantic_id_embeddings_(torch.randn(4, 8, 5))
    with pytest.raises(ValueError, match=r"shape \(levels, codebook_size, latent_dim\)"):
        model.init_semantic_id_embeddings_(torch.randn(8, 5))


def test_codebook_init_from_a_real_rqvae_saves_and_loads(tmp_path):
    tok = make_tokenizer(2, 40, levels=2, codebook=8)
    rqvae = RQVAEModel(RQVAEConfig(input_dim=6, hidden_dims=[12], latent_dim=4, codebook_size=8, num_levels=2))
    rqvae.kmeans_init_(torch.randn(64, 6, generator=torch.Generator().manual_seed(0)))
    model = make_model(tok)
    model.init_semantic_id_embeddings_(rqvae.quantizer.codebooks)
    model.save_pretrained(tmp_path)
    loaded = TigerForConditionalGeneration.from_pretrained(tmp_path)
    assert torch.equal(loaded.get_input_embeddings().weight, model.get_input_embeddings().weight)


def test_attention_dropout_rate_reaches_every_attention_layer_and_round_trips(tmp_path):
    tok = make_tokenizer(0, 30)
    model = make_model(tok, dropout_rate=0.2, attention_dropout_rate=0.0, num_decoder_layers=2)
    attentions = [m for m in model.modules() if isinstance(m, T5Attention)]
    assert len(attentions) == 1 + 2 * 2 and all(m.dropout == 0.0 for m in attentions)
    hidden = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert hidden and all(m.p == 0.2 for m in hidden)
    model.save_pretrained(tmp_path)
    loaded = TigerForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.config.attention_dropout_rate == 0.0
    assert all(m.dropout == 0.0 for m in loaded.modules() if isinstance(m, T5Attention))
    default = make_model(tok, dropout_rate=0.2)
    assert all(m.dropout == 0.2 for m in default.modules() if isinstance(m, T5Attention))


def test_attention_dropout_rate_is_validated():
    tok = make_tokenizer(0, 30)
    with pytest.raises(ValueError, match="attention_dropout_rate must be in"):
        make_model(tok, attention_dropout_rate=1.5)


def test_model_dropouts_are_tiger_dropout():
    model = make_model(make_tokenizer(0, 30), dropout_rate=0.1)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(type(m) is TigerDropout for m in dropouts)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_tiger_dropout_keeps_the_right_share_and_expectation(p):
    torch.manual_seed(0)
    layer = TigerDropout(p).train()
    x = torch.ones(400, 1000)
    y = layer(x)
    assert (y == 0).float().mean().item() == pytest.approx(p, abs=0.003)
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
    # the gradient flows through the kept entries only, with the same scale
    x = torch.ones(50, 60, requires_grad=True)
    layer(x).sum().backward()
    out = layer.eval()(x.detach())
    assert torch.equal(out, x.detach())
    grads = torch.unique(x.grad)
    assert len(grads) == 2 and grads[0] == 0.0 and grads[1].item() == pytest.approx(1 / (1 - p))


def test_tiger_dropout_is_seeded_and_handles_edge_rates():
    x = torch.randn(3, 7, 11)
    torch.manual_seed(5)
    first = TigerDropout(0.3).train()(x)
    torch.manual_seed(5)
    assert torch.equal(first, TigerDropout(0.3).train()(x))
    assert torch.equal(TigerDropout(0.0).train()(x), x)
    assert torch.equal(TigerDropout(1.0).train()(x), torch.zeros_like(x))


def test_recommend_batches_by_length_and_returns_input_order():
    """Sorting histories by length inside recommend() (less padding) changes neither items nor their order."""
    tok = make_tokenizer(3, 60, levels=2, codebook=8)
    model = make_model(tok, seed=1)
    generator = torch.Generator().manual_seed(0)
    histories = [
        [tok.item_ids[int(i)] for i in torch.randint(0, 60, (int(length),), generator=generator)]
        for length in torch.randint(1, 9, (17,), generator=generator)
    ]
    together, together_scores = model.recommend(histories, tok, top_k=5, num_beams=8, batch_size=4, return_scores=True)
    for history, items, scores in zip(histories, together, together_scores):
        alone, alone_scores = model.recommend([history], tok, top_k=5, num_beams=8, return_scores=True)
        assert alone[0] == items
        assert alone_scores[0] == pytest.approx(scores, abs=1e-5)


def test_sort_by_length_is_stable_and_keeps_rows():
    import datasets

    from hf_tiger.training import sort_by_length

    encoded = datasets.Dataset.from_dict({"input_ids": [[1, 2, 3], [1], [4, 5], [2], [7, 8, 9, 10]], "labels": list(range(5))})
    ordered = sort_by_length(encoded)
    assert ordered["labels"] == [1, 3, 2, 0, 4]
    assert sort_by_length(ordered) is ordered
