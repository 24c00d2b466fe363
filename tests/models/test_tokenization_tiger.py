"""Tests of SemanticIDTokenizer: vocabulary layout, collisions, round trips, batching, save/load, remote code."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoTokenizer

import hf_tiger
from hf_tiger import SemanticIDTokenizer

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


def run_without_hf_tiger(script: str, tmp_path) -> str:
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), PYTHONHASHSEED="123"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", BLOCK_HF_TIGER + textwrap.dedent(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def random_tokenizer(seed, num_items=200, levels=3, codebook=8, item_type=int, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, codebook, (num_items, levels), generator=generator)
    item_ids = [item_type(1000 + i) if item_type is int else f"B{i:05d}" for i in range(num_items)]
    kwargs.setdefault("num_user_buckets", 16)
    kwargs.setdefault("collision_size", 16)
    return SemanticIDTokenizer.from_codes(codes, item_ids=item_ids, codebook_size=codebook, **kwargs), codes


def test_vocabulary_layout():
    tok, _ = random_tokenizer(0, levels=3, codebook=8, num_user_buckets=5, collision_size=6)
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    assert tok.codebook_sizes == [8, 8, 8, 6] and tok.num_levels == 4 and tok.collision_size == 6
    assert tok.level_offsets == [8, 16, 24, 32]
    assert len(tok) == tok.vocab_size == 3 + 5 + 3 * 8 + 6
    assert tok.convert_ids_to_tokens([3, 7, 8, 17, 32]) == ["<u_0>", "<u_4>", "<l0_0>", "<l1_1>", "<l3_0>"]
    assert tok.convert_tokens_to_ids(["<l2_7>", "<l3_5>"]) == [31, 37]
    table = tok.catalogue_token_ids()
    assert table.shape == (tok.catalogue_size, 4)
    for level, (offset, size) in enumerate(zip(tok.level_offsets, tok.codebook_sizes)):
        assert ((table[:, level] >= offset) & (table[:, level] < offset + size)).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_collision_level_makes_semantic_ids_unique(seed):
    tok, codes = random_tokenizer(seed, num_items=300, levels=2, codebook=4, collision_size=64)
    semantic_ids = [tok.semantic_id(i) for i in tok.item_ids]
    assert len(set(semantic_ids)) == len(semantic_ids)
    seen = {}
    for item_id, row in zip(tok.item_ids, codes.tolist()):
        sid = tok.semantic_id(item_id)
        assert list(sid[:-1]) == row
        # collision codes count 0, 1, 2, ... within a group, in catalogue order
        assert sid[-1] == seen.get(tuple(row), 0)
        seen[tuple(row)] = sid[-1] + 1


def test_forced_collision_gets_distinct_codes():
    codes = torch.tensor([[3, 1], [0, 0], [3, 1], [3, 1], [2, 2]])
    tok = SemanticIDTokenizer.from_codes(
        codes, item_ids=["a", "b", "c", "d", "e"], codebook_size=4, num_user_buckets=2
    )
    assert [tok.semantic_id(i) for i in "acd"] == [(3, 1, 0), (3, 1, 1), (3, 1, 2)]
    assert tok.semantic_id("b") == (0, 0, 0)
    # the default collision size is the largest codebook size
    assert tok.collision_size == 4


def test_oversize_collision_group_is_a_clear_error():
    codes = torch.tensor([[1, 2]] * 4 + [[0, 0]])
    with pytest.raises(ValueError, match=r"exceed collision_size=3.*4 items share codes \(1, 2\)"):
        SemanticIDTokenizer.from_codes(codes, item_ids=range(5), codebook_size=4, collision_size=3)


@pytest.mark.parametrize(
    "codes, item_ids, message",
    [
        (torch.tensor([[1, 2], [0, 1], [3, 3]]), [7, 8, 7], "duplicate item ids: 7"),
        (torch.tensor([[1, 2], [0, 1]]), [1, 2, 3], "2 rows but 3 item ids"),
        (torch.tensor([[1, 2], [0, -1]]), [1, 2], "non-negative"),
        (torch.tensor([[1, 2], [0, 4]]), [1, 2], "code 4 of item 2 .* level 1"),
        (torch.tensor([[1.0, 2.0]]), [1], "integer codes"),
        (torch.tensor([1, 2]), [1, 2], "2-D"),
    ],
)
def test_bad_codes_or_ids_raise(codes, item_ids, message):
    with pytest.raises(ValueError, match=message):
        SemanticIDTokenizer.from_codes(codes, item_ids=item_ids, codebook_size=4)


def test_unknown_item_ids_are_listed():
    tok, _ = random_tokenizer(0)
    with pytest.raises(KeyError, match=r"2 unknown item id\(s\).*: 5, 'x'"):
        tok.encode_history([1000, 5, "x"])
    with pytest.raises(KeyError, match="1 unknown"):
        tok.semantic_id(99)
    with pytest.raises(KeyError, match=r"2 unknown item id\(s\).*: 3, 4"):
        tok.batch_encode_histories([[1000, 3], [1001]], targets=[1002, 4])


def test_history_encoding_and_round_trip():
    tok, _ = random_tokenizer(3, max_history=5)
    history = tok.item_ids[10:17]
    ids = tok.encode_history(history, user_id="alice")
    assert ids[0] == tok.user_token_id("alice") and ids[-1] == tok.eos_token_id
    assert len(ids) == 1 + 5 * tok.num_levels + 1  # truncated to the 5 most recent items
    assert tok.decode_items(ids) == history[-5:]
    assert tok.decode_items(tok.encode_history(history[:2])) == history[:2]
    for item_id in tok.item_ids[:20]:
        target = tok.encode_target(item_id)
        assert target == tok.item_token_ids(item_id) and len(target) == tok.num_levels
        assert tok.decode_items(target) == [item_id]
    # generate()-style rows: decoder start token first; padding rows and invalid codes decode to None
    rows = [[0, *tok.encode_target(i)] for i in tok.item_ids[:3]] + [[0] * (1 + tok.num_levels)]
    rows.append([0, *tok.encode_target(tok.item_ids[0])[:-1], tok.level_offsets[-1] + tok.collision_size - 1])
    decoded = tok.decode_items(torch.tensor(rows))
    assert decoded[:3] == tok.item_ids[:3] and decoded[3] is None
    assert decoded[4] is None or decoded[4] != tok.item_ids[0]
    with pytest.raises(ValueError, match="empty history"):
        tok.encode_history([])


def test_user_hash_is_stable_across_processes(tmp_path):
    tok, _ = random_tokenizer(0, num_user_buckets=2000)
    users = [0, 1, 42, "A3SPTOKDG7WBLN", "user-7"]
    expected = [tok.user_token_id(u) for u in users]
    assert all(3 <= t < 3 + 2000 for t in expected)
    assert len(set(expected)) > 1
    tok.save_pretrained(tmp_path / "tok")
    out = run_without_hf_tiger(
        f"""
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained({str(tmp_path / "tok")!r}, trust_remote_code=True)
        print([tok.user_token_id(u) for u in {users!r}])
        """,
        tmp_path,
    )
    assert json.loads(out.strip().splitlines()[-1]) == expected


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_batch_encoding_pads_with_attention_mask(padding_side):
    tok, _ = random_tokenizer(1)
    histories = [tok.item_ids[:1], tok.item_ids[5:9], tok.item_ids[3:5]]
    batch = tok.batch_encode_histories(
        histories, user_ids=["u1", None, 3], targets=tok.item_ids[20:23], padding_side=padding_side
    )
    assert batch["input_ids"].shape == (3, 4 * tok.num_levels + 1)  # longest: 4 items, no user token
    assert batch["labels"].shape == (3, tok.num_levels)
    for row, (history, user) in enumerate(zip(histories, ["u1", None, 3])):
        expected = tok.encode_history(history, user_id=user)
        mask = batch["attention_mask"][row].bool()
        assert batch["input_ids"][row][mask].tolist() == expected
        assert (batch["input_ids"][row][~mask] == tok.pad_token_id).all()
        positions = mask.nonzero().flatten()
        if padding_side == "right":
            assert positions.tolist() == list(range(len(expected)))
        else:
            assert positions.tolist() == list(
                range(batch["input_ids"].shape[1] - len(expected), batch["input_ids"].shape[1])
            )
    assert tok.decode_items(batch["labels"]) == tok.item_ids[20:23]
    # calling the tokenizer on histories is the same as batch_encode_histories
    called = tok(histories, user_ids=["u1", None, 3], padding_side=padding_side)
    assert torch.equal(called["input_ids"], batch["input_ids"])


@pytest.mark.parametrize("item_type", [int, str])
def test_save_load_round_trip_keeps_item_id_types(tmp_path, item_type):
    tok, _ = random_tokenizer(4, item_type=item_type, max_history=7)
    tok.add_items(
        torch.tensor([[0, 0, 0], [0, 0, 0]]), item_ids=[item_type(5) if item_type is int else "new-1", 77]
    )
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, SemanticIDTokenizer)
    assert loaded.item_ids == tok.item_ids
    assert [type(i) for i in loaded.item_ids] == [type(i) for i in tok.item_ids]
    assert len(loaded) == len(tok) == loaded.vocab_size and loaded.get_vocab() == tok.get_vocab()
    assert loaded.codebook_sizes == tok.codebook_sizes and loaded.max_history == 7
    assert loaded.num_user_buckets == tok.num_user_buckets
    assert torch.equal(loaded.catalogue_token_ids(), tok.catalogue_token_ids())
    assert loaded.catalogue_fingerprint() == tok.catalogue_fingerprint()
    history = tok.item_ids[-9:]
    assert loaded.encode_history(history, user_id=9) == tok.encode_history(history, user_id=9)
    # numpy / tensor ints look up the same items as plain ints
    if item_type is int:
        assert loaded.semantic_id(torch.tensor(tok.item_ids[0])) == tok.semantic_id(tok.item_ids[0])


def test_add_items_continues_collision_codes():
    tok, _ = random_tokenizer(5, num_items=50, levels=2, codebook=3)
    before = tok.catalogue_fingerprint()
    group = tuple(tok.semantic_id(tok.item_ids[0])[:-1])
    used = sum(1 for i in tok.item_ids if tok.semantic_id(i)[:-1] == group)
    assigned = tok.add_items(torch.tensor([list(group), list(group)]), item_ids=["cold-1", "cold-2"])
    assert assigned == [(*group, used), (*group, used + 1)]
    assert tok.item_ids[-2:] == ["cold-1", "cold-2"] and tok.catalogue_size == 52
    assert tok.catalogue_fingerprint() != before
    with pytest.raises(ValueError, match="duplicate item ids"):
        tok.add_items(torch.tensor([[0, 0]]), item_ids=["cold-1"])
    with pytest.raises(ValueError, match="expects 2"):
        tok.add_items(torch.tensor([[0, 0, 0]]), item_ids=["cold-3"])


def test_remote_code_loading_without_hf_tiger(tmp_path):
    tok, _ = random_tokenizer(6, item_type=str)
    tok.save_pretrained(tmp_path / "tok")
    config = json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())
    assert config["auto_map"]["AutoTokenizer"][0] == "tokenization_tiger.SemanticIDTokenizer"
    assert (tmp_path / "tok" / "tokenization_tiger.py").is_file()
    history = tok.item_ids[:4]
    out = run_without_hf_tiger(
        f"""
        import json
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained({str(tmp_path / "tok")!r}, trust_remote_code=True)
        assert type(tok).__module__.startswith("transformers_modules"), type(tok).__module__
        ids = tok.encode_history({history!r}, user_id="u")
        print(json.dumps([ids, tok.decode_items(ids), tok.catalogue_fingerprint()]))
        """,
        tmp_path,
    )
    ids, decoded, fingerprint = json.loads(out.strip().splitlines()[-1])
    assert ids == tok.encode_history(history, user_id="u")
    assert decoded == history
    assert fingerprint == tok.catalogue_fingerprint()


def test_public_names():
    assert hf_tiger.SemanticIDTokenizer is SemanticIDTokenizer
