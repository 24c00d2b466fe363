"""bf16 on CPUs that compute it natively: detection, decoding (`recommend(precision=...)`) and the training default."""

import pytest
import torch
from test_modeling_tiger import make_model, make_tokenizer, random_histories

from hf_tiger.models.tiger import generation_tiger
from hf_tiger.models.tiger.generation_tiger import cpu_bf16_support, inference_autocast_dtype
from hf_tiger.training import TigerTrainingArguments


@pytest.mark.parametrize(
    "flags, native, reason",
    [
        ("fpu avx512f amx_bf16 amx_tile avx512_bf16", True, "amx_bf16, avx512_bf16"),
        ("fpu avx512f avx512_bf16", True, "avx512_bf16"),
        ("fpu avx2 avx512f", False, "no AMX / AVX512-BF16"),
    ],
)
def test_cpu_bf16_support_reads_the_cpu_flags(tmp_path, monkeypatch, flags, native, reason):
    monkeypatch.delenv("HF_TIGER_CPU_BF16", raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    found, why = cpu_bf16_support(str(cpuinfo))
    assert found is native and reason in why
    found, why = cpu_bf16_support(str(tmp_path / "missing"))
    assert found is False and "unknown" in why


@pytest.mark.parametrize("value, native", [("1", True), ("true", True), ("0", False), ("no", False)])
def test_environment_overrides_the_detection(tmp_path, monkeypatch, value, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t: avx512f\n" if native else "flags\t: amx_bf16\n")
    monkeypatch.setenv("HF_TIGER_CPU_BF16", value)
    found, why = cpu_bf16_support(str(cpuinfo))
    assert found is native and "HF_TIGER_CPU_BF16" in why


def test_inference_autocast_dtype(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for native in (True, False):
        monkeypatch.setattr(generation_tiger, "cpu_bf16_support", lambda native=native: (native, "test"))
        # "auto" decodes in fp32 also where bf16 is native (bf16 reorders near-tied items: opt-in only)
        assert inference_autocast_dtype(cpu, torch.float32, "auto") is None
        assert inference_autocast_dtype(cpu, torch.float32, "bf16") == torch.bfloat16
        assert inference_autocast_dtype(cpu, torch.float32, "BFloat16") == torch.bfloat16
        assert inference_autocast_dtype(cpu, torch.float32, "fp32") is None
        # weights already in a low precision run as they are; "auto" leaves accelerators alone
        assert inference_autocast_dtype(cpu, torch.bfloat16, "auto") is None
        assert inference_autocast_dtype(cuda, torch.float32, "auto") is None
    with pytest.raises(ValueError, match="precision must be one of"):
        inference_autocast_dtype(cpu, torch.float32, "fp8")


def _decoder_dtypes(model):
    """Output dtypes of a decoder projection (the vocabulary projection itself always runs in fp32)."""
    seen = []
    query = model.decoder.block[0].layer[0].SelfAttention.o
    handle = query.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    return seen, handle


def test_recommend_in_bf16_keeps_fp32_scores_and_the_ranking(monkeypatch):
    tok = make_tokenizer(5, 400, levels=2, codebook=16)
    model = make_model(tok, seed=5)
    histories = random_histories(tok, 5, count=40)
    seen, handle = _decoder_dtypes(model)
    items32, scores32 = model.recommend(histories, tokenizer=tok, top_k=10, num_beams=20, return_scores=True)
    assert set(seen) == {torch.float32}
    seen.clear()
    items16, scores16 = model.recommend(
        histories, tokenizer=tok, top_k=10, num_beams=20, return_scores=True, precision="bf16"
    )
    assert set(seen) == {torch.bfloat16}, "the decoder ran outside bf16 autocast"
    assert next(model.parameters()).dtype == torch.float32  # the weights are not cast
    for recs, rec_scores in zip(items16, scores16):
        assert len(set(recs)) == 10 and set(recs) <= set(tok.item_ids)
        assert rec_scores == sorted(rec_scores, reverse=True)
    # bf16 rounding may swap near-tied items, but the lists stay close to fp32's
    overlap = sum(len(set(a) & set(b)) for a, b in zip(items32, items16)) / (10 * len(histories))
    assert overlap >= 0.8
    assert max(abs(a[0] - b[0]) for a, b in zip(scores32, scores16)) < 0.1
    # "auto" is fp32 on every CPU, also where bf16 is native (training still turns bf16 on there)
    for native in ("0", "1"):
        monkeypatch.setenv("HF_TIGER_CPU_BF16", native)
        seen.clear()
        assert model.recommend(histories, tokenizer=tok, top_k=10, num_beams=20) == items32
        assert set(seen) == {torch.float32}
    handle.remove()
    with pytest.raises(ValueError, match="precision must be one of"):
        model.recommend(histories, tokenizer=tok, precision="half")


@pytest.mark.parametrize("env, auto, explicit, expected", [
    ("1", True, {}, True),
    ("0", True, {}, False),
    ("1", False, {}, False),
    ("0", True, {"bf16": True}, True),
])
def test_training_turns_on_bf16_where_the_cpu_has_it(tmp_path, monkeypatch, env, auto, explicit, expected):
    monkeypatch.setenv("HF_TIGER_CPU_BF16", env)
    args = TigerTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", auto_cpu_bf16=auto, **explicit
    )
    assert args.bf16 is expected
    # without use_cpu (transformers refuses bf16 without a GPU unless it is set): bf16 means CPU autocast
    args = TigerTrainingArguments(output_dir=str(tmp_path), report_to="none", auto_cpu_bf16=auto, **explicit)
    assert args.bf16 is expected and (args.use_cpu or not expected or torch.cuda.is_available())
