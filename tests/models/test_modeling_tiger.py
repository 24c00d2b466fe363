"""Tests of TigerConfig / TigerForConditionalGeneration: constrained generate(), recommend(), catalogue, save/load."""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    T5ForConditionalGeneration,
)
from transformers.utils import logging as hf_logging

from hf_tiger import SemanticIDTokenizer, TigerConfig, TigerForConditionalGeneration

TINY = {"d_model": 16, "d_ff": 32, "num_layers": 1, "num_heads": 2, "d_kv": 8, "dropout_rate": 0.0}

# Run in a subprocess: makes `import hf_tiger` fail, then loads the folder as Hub remote code.
BLOCK_HF_TIGER = textwrap.dedent(
    """
    import importlib.abc, sys
    class _BlockHfTiger(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "hf_tiger" or name.startswith("hf_tiger."):
                raise ImportError("hf_tiger is blocked in this test")
    sys.meta_path.insert(0, _BlockHfTiger())
    try:
        import hf_tiger  # noqa: F401
        raise SystemExit("hf_tiger should not be importable here")
    except ImportError:
        pass
    """
)


def make_tokenizer(seed, num_items, levels=2, codebook=8, item_type=int, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, codebook, (num_items, levels), generator=generator)
    item_ids = [100 + i if item_type is int else f"item-{i}" for i in range(num_items)]
    kwargs.setdefault("num_user_buckets", 7)
    kwargs.setdefault("collision_size", max(codebook, num_items // codebook**levels * 4 + 8))
    return SemanticIDTokenizer.from_codes(codes, item_ids=item_ids, codebook_size=codebook, **kwargs)


def make_model(tok, seed=0, **sizes):
    torch.manual_seed(seed)
    model = TigerForConditionalGeneration(TigerConfig.from_tokenizer(tok, **{**TINY, **sizes}))
    model.set_catalogue(tok.catalogue_token_ids())
    return model.eval()


def random_histories(tok, seed, count=3, max_len=6):
    generator = torch.Generator().manual_seed(seed)
    histories = []
    for _ in range(count):
        length = int(torch.randint(1, max_len + 1, (1,), generator=generator))
        rows = torch.randint(0, tok.catalogue_size, (length,), generator=generator).tolist()
        histories.append([tok.item_ids[r] for r in rows])
    return histories


def teacher_forced_scores(model, batch, sequences, num_return_sequences):
    """Mean log-probability of each generated semantic ID under teacher forcing (beam search's score)."""
    labels = sequences[:, 1:].contiguous()
    input_ids = batch["input_ids"].repeat_interleave(num_return_sequences, 0)
    attention_mask = batch["attention_mask"].repeat_interleave(num_return_sequences, 0)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).logits
    return (
        torch.log_softmax(logits.float(), -1).gather(-1, labels[..., None]).squeeze(-1).sum(-1)
        / labels.shape[1]
    )


# ---------------------------------------------------------------------------------------------------- config


def test_config_from_tokenizer_matches_layout():
    tok = make_tokenizer(0, 30, levels=3, codebook=5, collision_size=6, max_history=9)
    config = TigerConfig.from_tokenizer(tok, d_model=24, num_layers=3)
    assert config.vocab_size == len(tok) and config.num_levels == 4
    assert config.codebook_sizes == [5, 5, 5, 6] and config.level_offsets == tok.level_offsets
    assert (config.pad_token_id, config.eos_token_id, config.decoder_start_token_id) == (0, 1, 0)
    assert config.catalogue_size == 30 and config.max_history == 9 and config.num_user_buckets == 7
    assert (config.d_model, config.num_layers, config.num_decoder_layers) == (24, 3, 3)
    with pytest.raises(ValueError, match="vocabulary layout"):
        TigerConfig.from_tokenizer(tok, vocab_size=100)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"codebook_sizes": [4, 0]}, "codebook_sizes"),
        ({"num_levels": 3, "codebook_sizes": [4, 4]}, "num_levels"),
        ({"codebook_sizes": [4, 4], "level_offsets": [10]}, "level_offsets"),
        ({"codebook_sizes": [4, 4], "level_offsets": [10, 12]}, "overlap"),
        ({"codebook_sizes": [4, 4], "vocab_size": 12}, "vocab_size"),
        ({"codebook_sizes": [4, 4], "level_offsets": [0, 4]}, "pad_token_id"),
        ({"catalogue_size": -1}, "catalogue_size"),
        ({"max_history": 0}, "max_history"),
        ({"default_num_beams": 0}, "default_num_beams"),
    ],
)
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TigerConfig(num_user_buckets=5, **kwargs)


# ---------------------------------------------------------------------------------------------------- generate


@pytest.mark.parametrize("fast_beam_search", [True, False], ids=["fast", "transformers"])
@pytest.mark.parametrize(
    "seed, num_items, num_beams, num_return_sequences",
    [
        (0, 3, 1, 1),
        (1, 3, 5, 5),
        (2, 4, 50, 50),
        (3, 17, 8, 3),
        (4, 200, 20, 10),
        (5, 5000, 50, 50),
        (6, 1000, 2, 2),
    ],
)
def test_untrained_generate_returns_valid_distinct_items(
    seed, num_items, num_beams, num_return_sequences, fast_beam_search
):
    codebook = 4 if num_items < 100 else 32
    tok = make_tokenizer(seed, num_items, levels=2, codebook=codebook)
    model = make_model(tok, seed=seed)
    batch = tok.batch_encode_histories(random_histories(tok, seed), user_ids=["a", 1, None])
    output = model.generate(
        **batch,
        num_beams=num_beams,
        num_return_sequences=num_return_sequences,
        return_dict_in_generate=True,
        fast_beam_search=fast_beam_search,
    )
    assert output.sequences.shape == (3 * num_return_sequences, 1 + tok.num_levels)
    assert (output.sequences[:, 0] == model.config.decoder_start_token_id).all()
    items = tok.decode_items(output.sequences)
    scores = output.sequences_scores.view(3, num_return_sequences)
    expected_valid = min(num_return_sequences, num_items)
    for row in range(3):
        found = items[row * num_return_sequences : (row + 1) * num_return_sequences]
        assert all(item is not None for item in found[:expected_valid])
        assert len(set(found[:expected_valid])) == expected_valid
        # padding rows: last, all pad tokens, score -inf
        assert found[expected_valid:] == [None] * (num_return_sequences - expected_valid)
        padding = output.sequences.view(3, num_return_sequences, -1)[row, expected_valid:]
        assert (padding == tok.pad_token_id).all()
        assert torch.isneginf(scores[row, expected_valid:]).all()
        assert torch.isfinite(scores[row, :expected_valid]).all()
        assert (scores[row, :expected_valid].diff() <= 1e-6).all()  # best first
    # the reported score is the mean log-probability of the semantic ID under teacher forcing
    valid = torch.isfinite(output.sequences_scores)
    forced = teacher_forced_scores(model, batch, output.sequences, num_return_sequences)
    torch.testing.assert_close(output.sequences_scores[valid], forced[valid], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed, fast_beam_search", [(0, True), (1, False)])
def test_generate_pins_beam_search_against_sampling_settings(seed, fast_beam_search, caplog):
    tok = make_tokenizer(seed, 300, levels=2, codebook=16)
    model = make_model(tok, seed=seed)
    batch = tok.batch_encode_histories(random_histories(tok, seed))
    reference = model.generate(
        **batch, num_beams=6, num_return_sequences=4, fast_beam_search=fast_beam_search
    )
    model.generation_config.do_sample = True
    model.generation_config.temperature = 5.0
    model.generation_config.top_k = 2
    hf_logging.enable_propagation()
    try:
        with caplog.at_level("WARNING"):
            sampled = model.generate(
                **batch,
                num_beams=6,
                num_return_sequences=4,
                repetition_penalty=3.0,
                fast_beam_search=fast_beam_search,
            )
    finally:
        hf_logging.disable_propagation()
    assert torch.equal(sampled, reference)
    assert "do_sample=True" in caplog.text and "repetition_penalty=3.0" in caplog.text
    # num_beams below num_return_sequences is raised; no num_beams uses config.default_num_beams
    raised = model.generate(**batch, num_beams=2, num_return_sequences=4)
    assert torch.equal(raised, model.generate(**batch, num_beams=4, num_return_sequences=4))
    assert model.generate(**batch).shape == (3, 1 + tok.num_levels)
    with pytest.raises(ValueError, match="prefix_allowed_tokens_fn"):
        model.generate(**batch, prefix_allowed_tokens_fn=lambda batch_id, ids: [0])


def test_recommend_returns_ranked_distinct_items_and_scores():
    tok = make_tokenizer(3, 500, levels=2, codebook=16, item_type=str)
    model = make_model(tok, seed=3)
    histories = random_histories(tok, 3, count=5)
    items, scores = model.recommend(
        histories, tokenizer=tok, top_k=7, num_beams=10, return_scores=True, batch_size=2
    )
    assert len(items) == len(scores) == 5
    catalogue = set(tok.item_ids)
    for recs, rec_scores in zip(items, scores):
        assert len(recs) == 7 and len(set(recs)) == 7 and set(recs) <= catalogue
        assert all(isinstance(r, str) for r in recs)
        assert rec_scores == sorted(rec_scores, reverse=True)
    # batching does not change results; the model is left in the mode it was in
    model.train()
    assert model.recommend(histories, tokenizer=tok, top_k=7, num_beams=10, batch_size=256) == items
    assert model.training


def test_recommend_small_catalogue_returns_fewer_items():
    tok = make_tokenizer(4, 3, levels=2, codebook=4)
    model = make_model(tok, seed=4)
    recs = model.recommend([[100], [101, 102]], tokenizer=tok, top_k=10)
    assert [sorted(r) for r in recs] == [[100, 101, 102]] * 2


# ---------------------------------------------------------------------------------------------------- catalogue


def test_set_catalogue_new_item_becomes_recommendable(tmp_path):
    tok = make_tokenizer(5, 40, levels=2, codebook=4)
    model = make_model(tok, seed=5)
    history = [[100, 101]]
    before = model.recommend(history, tokenizer=tok, top_k=50)[0]
    assert sorted(before) == sorted(tok.item_ids)
    tok.add_items(torch.tensor([[3, 3]]), item_ids=["cold-start"])
    # the tokenizer knows more items than the model's catalogue: allowed, the new item is not recommended yet
    assert "cold-start" not in model.recommend(history, tokenizer=tok, top_k=50)[0]
    model.set_catalogue(tok.catalogue_token_ids())
    assert model.config.catalogue_size == 41
    assert "cold-start" in model.recommend(history, tokenizer=tok, top_k=50)[0]
    # restrict to items in stock: only those come back, and the new size survives save -> load
    in_stock = torch.tensor([0, 7, 40])
    model.set_catalogue(tok.catalogue_token_ids()[in_stock])
    recs = model.recommend(history, tokenizer=tok, top_k=5)[0]
    assert sorted(recs, key=str) == sorted([tok.item_ids[i] for i in in_stock.tolist()], key=str)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert loaded.catalogue.shape == (3, tok.num_levels) and torch.equal(loaded.catalogue, model.catalogue)
    assert loaded.recommend(history, tokenizer=tok, top_k=5)[0] == recs


def test_set_catalogue_rejects_bad_tables():
    tok = make_tokenizer(6, 20, levels=2, codebook=4)
    model = make_model(tok)
    table = tok.catalogue_token_ids()
    with pytest.raises(ValueError, match="shape"):
        model.set_catalogue(table[:, :2])
    with pytest.raises(ValueError, match="not raw codes"):
        model.set_catalogue(torch.tensor([list(tok.semantic_id(100))]))
    with pytest.raises(ValueError, match="duplicate"):
        model.set_catalogue(torch.cat([table, table[:1]]))
    with pytest.raises(ValueError, match="at least one"):
        model.set_catalogue(table[:0])
    fresh = TigerForConditionalGeneration(TigerConfig.from_tokenizer(tok, **TINY))
    with pytest.raises(ValueError, match="set_catalogue"):
        fresh.generate(**tok.batch_encode_histories([[100]]))


# ---------------------------------------------------------------------------------------------------- bad input


def test_bad_inputs_get_clear_errors_or_documented_truncation():
    tok = make_tokenizer(7, 60, levels=2, codebook=4, max_history=4)
    model = make_model(tok, seed=7)
    with pytest.raises(KeyError, match="unknown item id.*99999"):
        model.recommend([[100, 99999]], tokenizer=tok)
    with pytest.raises(ValueError, match="history 1 is empty"):
        model.recommend([[100], []], tokenizer=tok)
    with pytest.raises(TypeError, match="wrap a single history"):
        model.recommend([100, 101], tokenizer=tok)
    long_history = tok.item_ids[:30]
    assert model.recommend([long_history], tokenizer=tok, top_k=5) == model.recommend(
        [long_history[-4:]], tokenizer=tok, top_k=5
    )
    other_layout = make_tokenizer(7, 60, levels=2, codebook=5)
    with pytest.raises(ValueError, match="do not match: vocab size"):
        model.recommend([[100]], tokenizer=other_layout)
    other_catalogue = make_tokenizer(8, 60, levels=2, codebook=4, max_history=4)
    with pytest.raises(ValueError, match="do not match: the tokenizer maps the model's first 60 items"):
        model.recommend([[100]], tokenizer=other_catalogue)
    model.config.item_mapping_fingerprint = None  # a model saved without the item-mapping fingerprint
    with pytest.raises(ValueError, match="unknown to the tokenizer"):
        model.recommend([[100]], tokenizer=other_catalogue)


# ---------------------------------------------------------------------------------------------------- save / load


def test_forward_trains_on_tokenizer_labels():
    tok = make_tokenizer(9, 50, levels=2, codebook=4)
    model = make_model(tok, seed=9)
    assert isinstance(model, T5ForConditionalGeneration)
    batch = tok.batch_encode_histories(random_histories(tok, 9), targets=tok.item_ids[:3])
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert math.isfinite(losses[0]) and losses[-1] < 0.5 * losses[0]
    model.eval()
    assert model.recommend([random_histories(tok, 9)[0]], tokenizer=tok, top_k=1, num_beams=5)[0] == [
        tok.item_ids[0]
    ]


@pytest.mark.parametrize("seed", [0, 1])
def test_save_load_auto_classes_identical(tmp_path, seed):
    tok = make_tokenizer(seed, 300, levels=3, codebook=8, item_type=str if seed else int)
    model = make_model(tok, seed=seed)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    histories = random_histories(tok, seed)
    batch = tok.batch_encode_histories(histories, targets=tok.item_ids[:3])
    with torch.no_grad():
        logits = model(**batch).logits
    recs = model.recommend(histories, tokenizer=tok, top_k=5, num_beams=8)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), TigerConfig)
    loaded_tok = AutoTokenizer.from_pretrained(tmp_path)
    for auto_class in (AutoModelForSeq2SeqLM, AutoModel):
        loaded = auto_class.from_pretrained(tmp_path).eval()
        assert isinstance(loaded, TigerForConditionalGeneration)
        assert torch.equal(loaded.catalogue, model.catalogue)
        with torch.no_grad():
            assert torch.equal(loaded(**batch).logits, logits)
        assert loaded.recommend(histories, tokenizer=loaded_tok, top_k=5, num_beams=8) == recs


def test_remote_code_loading_without_hf_tiger(tmp_path):
    tok = make_tokenizer(11, 400, levels=2, codebook=16, item_type=str)
    model = make_model(tok, seed=11)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    for name in (
        "configuration_tiger.py",
        "modeling_tiger.py",
        "generation_tiger.py",
        "tokenization_tiger.py",
    ):
        assert (folder / name).is_file(), name
    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForSeq2SeqLM"] == "modeling_tiger.TigerForConditionalGeneration"
    assert auto_map["AutoModel"] == auto_map["AutoModelForSeq2SeqLM"]
    assert auto_map["AutoConfig"] == "configuration_tiger.TigerConfig"

    histories = random_histories(tok, 11)
    batch = tok.batch_encode_histories(histories, targets=tok.item_ids[:3])
    with torch.no_grad():
        logits = model(**batch).logits
    recs = model.recommend(histories, tokenizer=tok, top_k=6, num_beams=9)
    script = BLOCK_HF_TIGER + textwrap.dedent(
        f"""
        import json, torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
        folder = {str(folder)!r}
        model = AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True).eval()
        tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        batch = tok.batch_encode_histories({histories!r}, targets={tok.item_ids[:3]!r})
        with torch.no_grad():
            logits = model(**batch).logits
        recs = model.recommend({histories!r}, tokenizer=tok, top_k=6, num_beams=9)
        print(json.dumps({{"logits": logits.tolist(), "recs": recs}}))
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert torch.equal(torch.tensor(remote["logits"]), logits)
    assert remote["recs"] == recs


# ------------------------------------------------------------------------------------------ tokenizer pairing


def test_fresh_model_takes_the_tokenizers_catalogue():
    # the DESIGN.md contract: TigerForConditionalGeneration(TigerConfig.from_tokenizer(tok)).recommend(..., tok)
    tok = make_tokenizer(11, 30)
    torch.manual_seed(0)
    model = TigerForConditionalGeneration(TigerConfig.from_tokenizer(tok, **TINY)).eval()
    recs = model.recommend([[100, 101]], tokenizer=tok, top_k=5)[0]
    assert len(recs) == 5 and set(recs) <= set(tok.item_ids)
    assert torch.equal(model.catalogue, tok.catalogue_token_ids())


def test_tokenizer_mapping_the_same_codes_to_other_items_is_refused(tmp_path):
    tok = make_tokenizer(12, 40)
    model = make_model(tok, seed=1)
    # same semantic IDs and vocabulary, but the item ids come in another order: every check on token ids passes
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0)).tolist()
    codes = torch.tensor([list(tok.semantic_id(tok.item_ids[i])[:-1]) for i in perm])
    shuffled = SemanticIDTokenizer.from_codes(
        codes, item_ids=[tok.item_ids[i] for i in perm], codebook_size=8, collision_size=tok.collision_size,
        num_user_buckets=7,
    )
    # every semantic ID of the model's catalogue is known to it: only the item mapping tells them apart
    assert all(item is not None for item in shuffled.decode_items(model.catalogue))
    assert shuffled.decode_items(model.catalogue) != tok.decode_items(model.catalogue)
    with pytest.raises(ValueError, match="maps the model's first 40 items"):
        model.recommend([[100]], tokenizer=shuffled, top_k=3)
    # the check survives save -> load, and items appended to the right tokenizer are still accepted
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    with pytest.raises(ValueError, match="item mapping fingerprints differ"):
        loaded.check_tokenizer(shuffled)
    tok.add_items(torch.tensor([[1, 2]]), item_ids=[999])
    loaded.check_tokenizer(tok)
    # choosing the other tokenizer on purpose re-pairs the model with it
    loaded.set_catalogue(shuffled)
    loaded.check_tokenizer(shuffled)


def test_set_catalogue_checks_the_tokenizer_layout():
    tok = make_tokenizer(13, 20)
    model = make_model(tok)
    other = make_tokenizer(13, 20, num_user_buckets=9)
    with pytest.raises(ValueError, match="tokenizer and model do not match"):
        model.set_catalogue(other)
    assert torch.equal(model.catalogue, tok.catalogue_token_ids())
