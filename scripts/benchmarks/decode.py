#!/usr/bin/env python
"""Decoding benchmark: TIGER's constrained beam search, four ways, side by side on the same model and inputs.

Methods (same 4.6M-parameter-class TIGER, same inputs, greedy-free beam search, `num_beams` beams, top-k results):
  - ``unconstrained``: transformers' beam search, no constraint (a lower bound for the transformers path);
  - ``transformers+processor``: transformers' beam search + `TrieConstrainedLogitsProcessor` (vectorised trie);
  - ``transformers+prefix_fn``: transformers' beam search + `prefix_allowed_tokens_fn` (a Python dict trie);
  - ``fast (ours)``: `TigerForConditionalGeneration.generate()`'s default, `generation_tiger.tiger_beam_search`.

For each: time per batch, the time spent in the constraint (processor / prefix function calls, or the trie-index
calls inside the fast search) and its share of the decode time, the speedup over transformers + processor, and
whether the results equal transformers + processor's (same items in the same order, max score difference).
Then the full evaluation: `model.recommend()` (tokenise + fast search + decode) over all Beauty test users, once per
``--precisions`` setting (fp32, and bf16 autocast with fp32 scores): users/s, achieved GFLOP/s (FlopCounterMode over
the first users) beside the fp32 and bf16 matmul peak measured in the same run, and the share of users whose top-k
equals the first setting's. The CPU's name and its AMX / AVX512-BF16 support are printed with it.

The catalogue is Beauty-sized (12,101 items) with random codes (3 x 256 + collision level) unless a saved
`SemanticIDTokenizer` (``--tokenizer_path``) or a trained RQ-VAE (``--rqvae_path``, codes of the Beauty item
embeddings) provides real semantic IDs. Histories are full (20 items). Times depend on what else runs on the
machine: the script prints the load average before and after.

Usage:
    python scripts/benchmarks/decode.py                 # CPU, batch 32 and 256, full Beauty test evaluation
    python scripts/benchmarks/decode.py --quick         # smoke run (small catalogue, few users)
    python scripts/benchmarks/decode.py --device cuda
    python scripts/benchmarks/decode.py --skip_table --model_name_or_path runs/beauty-cpu \
        --dataset amazon-p5/beauty --data_dir ../shared/data       # a trained model on the real test users
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import HfArgumentParser, LogitsProcessorList, PrefixConstrainedLogitsProcessor, set_seed

from hf_tiger import SemanticIDTokenizer, TigerConfig, TigerForConditionalGeneration
from hf_tiger.machine import cpu_description, matmul_peak
from hf_tiger.models.tiger.generation_tiger import (
    _PRECISIONS,
    CatalogueIndex,
    TrieConstrainedLogitsProcessor,
    inference_autocast_dtype,
)


@dataclass
class DecodeBenchmarkArguments:
    device: str = field(default="cpu", metadata={"help": "cpu or cuda."})
    quick: bool = field(default=False, metadata={"help": "Smoke run: small catalogue, batch 8, few users."})
    batch_sizes: list[int] = field(default_factory=lambda: [32, 256], metadata={"help": "Users per batch."})
    num_beams: int = field(default=20, metadata={"help": "Beam width."})
    top_k: int = field(default=10, metadata={"help": "Items returned per user (num_return_sequences)."})
    num_items: int = field(default=12101, metadata={"help": "Random catalogue size (Beauty: 12,101)."})
    codebook_size: int = field(default=256, metadata={"help": "Codes per level of the random catalogue."})
    num_code_levels: int = field(default=3, metadata={"help": "Code levels (a collision level is appended)."})
    num_user_buckets: int = field(default=2000, metadata={"help": "User tokens."})
    history_length: int = field(default=20, metadata={"help": "Items per history."})
    num_test_users: int = field(
        default=22363, metadata={"help": "Users of the full evaluation (Beauty test)."}
    )
    eval_batch_size: int | None = field(
        default=None,
        metadata={"help": "Users per batch in the full evaluation (default: recommend()'s, 64 on CPU, 256 on GPU)."},
    )
    skip_full_eval: bool = field(default=False, metadata={"help": "Only the side-by-side table."})
    skip_table: bool = field(default=False, metadata={"help": "Only the full evaluation."})
    transformers_repeats: int = field(default=1, metadata={"help": "Timed runs of each transformers method."})
    fast_repeats: int = field(
        default=3, metadata={"help": "Timed runs of the fast search (median reported)."}
    )
    tokenizer_path: str | None = field(
        default=None, metadata={"help": "Saved SemanticIDTokenizer: real codes."}
    )
    rqvae_path: str | None = field(default=None, metadata={"help": "Trained RQ-VAE: codes of Beauty items."})
    data_dir: str | None = field(
        default=None, metadata={"help": "Data root for --rqvae_path (../shared/data)."}
    )
    dtype: str = field(default="float32", metadata={"help": "float32 or bfloat16 model weights."})
    precisions: list[str] = field(
        default_factory=lambda: ["fp32", "bf16"],
        metadata={
            "help": "Full evaluation: recommend(precision=...) settings timed in turn; the first is the reference "
            "of the top-10 agreement (auto = fp32 on every CPU). PRECISION@BATCH also sets the batch size, e.g. "
            "`fp32 fp32@256 bf16`: the fp32@256 row shows how often fp32 agrees with itself when only the batching "
            "changes (the floor of the agreement columns)."
        },
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Full evaluation with a saved TIGER (and its tokenizer) instead of a random one."}
    )
    dataset: str | None = field(
        default=None, metadata={"help": "Full evaluation on this dataset's users (e.g. amazon-p5/beauty), not random."}
    )
    split: str = field(default="test", metadata={"help": "Split of --dataset whose users are scored."})
    flop_sample: int = field(default=256, metadata={"help": "Users whose decode FLOPs are counted (GFLOP/s)."})
    threads: int | None = field(default=None, metadata={"help": "torch.set_num_threads (CPU)."})
    seed: int = field(default=0, metadata={"help": "Random seed."})


# ------------------------------------------------------------------------------------------------ set-up


def build_tokenizer(args: DecodeBenchmarkArguments) -> SemanticIDTokenizer:
    if args.tokenizer_path:
        return SemanticIDTokenizer.from_pretrained(args.tokenizer_path)
    if args.rqvae_path:
        from transformers import AutoModel

        from hf_tiger.data import embed_items, load_items

        items = load_items("amazon-p5/beauty", data_dir=args.data_dir)
        embeddings = torch.as_tensor(embed_items(items))
        rqvae = AutoModel.from_pretrained(args.rqvae_path)
        codes = rqvae.get_semantic_ids(embeddings)
        return SemanticIDTokenizer.from_codes(
            codes,
            item_ids=list(items["item_id"]),
            codebook_size=rqvae.config.codebook_size,
            num_user_buckets=args.num_user_buckets,
        )
    generator = torch.Generator().manual_seed(args.seed)
    codes = torch.randint(0, args.codebook_size, (args.num_items, args.num_code_levels), generator=generator)
    return SemanticIDTokenizer.from_codes(
        codes,
        item_ids=list(range(1, args.num_items + 1)),
        codebook_size=args.codebook_size,
        num_user_buckets=args.num_user_buckets,
    )


def build_model(tok: SemanticIDTokenizer, args: DecodeBenchmarkArguments) -> TigerForConditionalGeneration:
    config = TigerConfig.from_tokenizer(
        tok,
        d_model=128,
        num_layers=4,
        num_decoder_layers=4,
        num_heads=6,
        d_kv=64,
        d_ff=1024,
        dropout_rate=0.0,
    )
    model = TigerForConditionalGeneration(config)
    model.set_catalogue(tok.catalogue_token_ids())
    return model.to(device=args.device, dtype=getattr(torch, args.dtype)).eval()


def random_users(tok: SemanticIDTokenizer, count: int, args: DecodeBenchmarkArguments, seed: int):
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, len(tok.item_ids), (count, args.history_length), generator=generator).tolist()
    histories = [[tok.item_ids[r] for r in row] for row in rows]
    user_ids = [f"user-{seed}-{i}" for i in range(count)] if tok.num_user_buckets > 0 else None
    return histories, user_ids


# ------------------------------------------------------------------------------------------------ timing


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Stopwatch:
    """Accumulates the time spent inside wrapped callables (synchronising CUDA around each call)."""

    def __init__(self, device: str):
        self.device = device
        self.seconds = 0.0

    def wrap(self, function):
        def timed(*args, **kwargs):
            synchronize(self.device)
            start = time.perf_counter()
            result = function(*args, **kwargs)
            synchronize(self.device)
            self.seconds += time.perf_counter() - start
            return result

        return timed


@contextmanager
def time_index_calls(stopwatch: Stopwatch):
    """Times the trie-index calls the fast search makes (children masks and child lookups)."""
    originals = {name: getattr(CatalogueIndex, name) for name in ("children_mask", "child")}
    for name, function in originals.items():
        setattr(CatalogueIndex, name, stopwatch.wrap(function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(CatalogueIndex, name, function)


def python_trie_prefix_fn(tok: SemanticIDTokenizer):
    """The classic `prefix_allowed_tokens_fn`: a dict from prefix tuples to allowed next tokens."""
    catalogue = tok.catalogue_token_ids().tolist()
    num_levels = len(catalogue[0])
    trie: dict[tuple, list[int]] = {}
    for row in catalogue:
        for t in range(num_levels):
            trie.setdefault(tuple(row[:t]), set()).add(row[t])
    trie = {prefix: sorted(children) for prefix, children in trie.items()}
    items = {tuple(row) for row in catalogue}
    eos, pad = tok.eos_token_id, tok.pad_token_id

    def prefix_allowed_tokens_fn(batch_id, sent):
        prefix = tuple(sent[1:].tolist())
        if len(prefix) < num_levels:
            return trie.get(prefix, [pad])  # invalid prefixes are -inf filler beams: anything, they stay -inf
        return [eos] if prefix[:num_levels] in items else [pad]

    return prefix_allowed_tokens_fn


def run_method(method, model, tok, batch, args):
    """Runs one decode; returns (seconds, constraint seconds, sequences, scores)."""
    stopwatch = Stopwatch(args.device)
    common = dict(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        num_beams=args.num_beams,
        num_return_sequences=args.top_k,
        return_dict_in_generate=True,
        output_scores=True,
    )
    transformers_kwargs = dict(common, constrained=False, do_sample=False, max_new_tokens=tok.num_levels)
    synchronize(args.device)
    start = time.perf_counter()
    if method == "unconstrained":
        output = model.generate(**transformers_kwargs)
    elif method == "transformers+processor":
        processor = TrieConstrainedLogitsProcessor(model._catalogue_index(), prompt_length=1)
        timed = LogitsProcessorList([_CallableProcessor(stopwatch.wrap(processor.__call__))])
        output = model.generate(**transformers_kwargs, logits_processor=timed)
    elif method == "transformers+prefix_fn":
        # the processor generate() builds from prefix_allowed_tokens_fn, built here to time all of it
        processor = PrefixConstrainedLogitsProcessor(python_trie_prefix_fn(tok), args.num_beams)
        timed = LogitsProcessorList([_CallableProcessor(stopwatch.wrap(processor.__call__))])
        output = model.generate(**transformers_kwargs, logits_processor=timed)
    elif method == "fast (ours)":
        with time_index_calls(stopwatch):
            output = model.generate(**common)
    else:
        raise ValueError(method)
    synchronize(args.device)
    seconds = time.perf_counter() - start
    return seconds, stopwatch.seconds, output.sequences.cpu(), output.sequences_scores.float().cpu()


class _CallableProcessor:
    """LogitsProcessorList accepts any callable (input_ids, scores) -> scores; this one is timed."""

    def __init__(self, function):
        self.function = function

    def __call__(self, input_ids, scores):
        return self.function(input_ids, scores)


def compare_results(sequences, scores, reference_sequences, reference_scores, near_tie=1e-5) -> str:
    """
    Same items in the same order as the reference, scores within 1e-4? Rank positions where the items differ are
    accepted only as *near-ties*: both results' scores at that rank within `near_tie` (float rounding in a
    different but equivalent computation can swap two items whose scores agree to ~1e-6, or keep a different
    one of two near-equal beams); anything else is a mismatch.
    """
    valid = reference_scores > -1e8  # transformers' filler hypotheses score about -1e9
    differ = (sequences != reference_sequences).any(-1) & valid
    score_diff = (scores - reference_scores).abs()[valid]
    max_diff = float(score_diff.max()) if score_diff.numel() else 0.0
    near_ties = int(differ.sum())
    if max_diff > 1e-4 or (near_ties and float((scores - reference_scores).abs()[differ].max()) > near_tie):
        return f"NO: {near_ties} rows differ, max score diff {max_diff:.1e}"
    if near_ties:
        return f"yes, up to {near_ties} near-tie swap(s) of {int(valid.sum())} results (max score diff {max_diff:.1e})"
    return f"yes (max score diff {max_diff:.1e})"


def print_table(rows: list[dict]) -> None:
    print()
    print(
        "| batch | method | time / batch (s) | ms / user | constraint (s) | constraint share | speedup vs "
        "transformers+processor | same items & order as transformers+processor |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        share = "-" if row["share"] is None else f"{100 * row['share']:.1f}%"
        constraint = "-" if row["share"] is None else f"{row['constraint']:.3f}"
        print(
            f"| {row['batch']} | {row['method']} | {row['seconds']:.3f} | {row['per_user_ms']:.1f} | {constraint} | "
            f"{share} | {row['speedup']:.1f}x | {row['same'] or '-'} |"
        )


def load_average() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def evaluation_users(args: DecodeBenchmarkArguments, tok: SemanticIDTokenizer, use_user_tokens: bool):
    """Histories (and user ids) of the full evaluation: a dataset split's users, or random full histories."""
    if args.dataset:
        from hf_tiger.data import load_sequences

        split = load_sequences(args.dataset, data_dir=args.data_dir)[args.split]
        if args.num_test_users < split.num_rows:
            split = split.select(range(args.num_test_users))
        histories = [list(history) for history in split["history"]]
        return histories, (list(split["user_id"]) if use_user_tokens else None)
    histories, user_ids = random_users(tok, args.num_test_users, args, seed=1)
    return histories, (user_ids if use_user_tokens else None)


def decode_flops_per_user(model, tok, histories, user_ids, args, precision: str, batch_size: int) -> float:
    """FLOPs of `model.recommend` per user, counted (untimed) on the first `--flop_sample` users."""
    count = min(args.flop_sample, len(histories))
    counter = FlopCounterMode(display=False)
    with counter:
        model.recommend(
            histories[:count], tokenizer=tok, user_ids=None if user_ids is None else user_ids[:count],
            top_k=args.top_k, num_beams=args.num_beams, batch_size=batch_size, precision=precision,
        )
    return counter.get_total_flops() / max(count, 1)


def parse_setting(setting: str) -> tuple[str, int | None]:
    """`"fp32"` -> `("fp32", None)` (the default batch size), `"bf16@256"` -> `("bf16", 256)`; a clear error
    otherwise."""
    precision, _, batch = setting.partition("@")
    if precision not in _PRECISIONS or (batch and (not batch.isdigit() or int(batch) < 1)):
        raise ValueError(
            f"--precisions takes auto, fp32 or bf16, each optionally @BATCH_SIZE (e.g. fp32@256), got {setting!r}"
        )
    return precision, int(batch) if batch else None


def full_evaluation(args: DecodeBenchmarkArguments, model, tok, settings: list[tuple[str, int | None]]) -> dict:
    """`model.recommend` over all evaluation users once per `--precisions` setting: users/s, GFLOP/s against the
    matmul peak of the same run, and how many users get the same top-K as under the first setting."""
    use_user_tokens = tok.num_user_buckets > 0 and model.config.num_user_buckets > 0
    if args.model_name_or_path:
        from hf_tiger.training.evaluation import trained_with_user_tokens

        use_user_tokens = use_user_tokens and trained_with_user_tokens(args.model_name_or_path) is not False
    histories, user_ids = evaluation_users(args, tok, use_user_tokens)
    on_cpu = torch.device(args.device).type == "cpu"
    eval_batch_size = args.eval_batch_size or (64 if on_cpu else 256)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)} if on_cpu else {}
    rows, reference = [], None
    for precision, batch_size in settings:
        batch_size = batch_size or eval_batch_size
        resolved = inference_autocast_dtype(model.device, model.dtype, precision)
        compute = "bf16" if resolved == torch.bfloat16 or model.dtype == torch.bfloat16 else "fp32"
        flops = decode_flops_per_user(model, tok, histories, user_ids, args, precision, batch_size)
        synchronize(args.device)
        start = time.perf_counter()
        recommendations = model.recommend(
            histories, tokenizer=tok, user_ids=user_ids, top_k=args.top_k, num_beams=args.num_beams,
            batch_size=batch_size, precision=precision,
        )
        synchronize(args.device)
        seconds = time.perf_counter() - start
        reference = reference or recommendations
        same = sum(a == b for a, b in zip(recommendations, reference)) / len(histories)
        same_set = sum(set(a) == set(b) for a, b in zip(recommendations, reference)) / len(histories)
        overlap = sum(len(set(a) & set(b)) for a, b in zip(recommendations, reference)) / (
            args.top_k * len(histories)
        )
        gflops = flops * len(histories) / seconds / 1e9
        rows.append(
            dict(
                precision=precision, batch_size=batch_size, computes=compute, users=len(histories), seconds=seconds,
                users_per_second=len(histories) / seconds, gflops=gflops,
                peak_share=gflops / peaks[compute] if peaks else None, same_top_k=same, same_set=same_set,
                overlap=overlap,
            )
        )
    name, support = cpu_description()
    source = f"{args.dataset} {args.split} users" if args.dataset else f"random {args.history_length}-item histories"
    print()
    print(
        f"Full evaluation (model.recommend: tokenise + fast search + decode, batch {eval_batch_size} unless named, "
        f"{args.num_beams} beams, top {args.top_k}): {len(histories):,} {source}; {name}, bf16: {support}"
        + (f"; matmul peak fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s" if peaks else "")
    )
    print(
        f"| precision | batch | computes in | seconds | users/s | GFLOP/s | % of that dtype's matmul peak | "
        f"same top-{args.top_k} as {args.precisions[0]} (order too) | same top-{args.top_k} items | items in common |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        share = "-" if row["peak_share"] is None else f"{100 * row['peak_share']:.1f}%"
        print(
            f"| {row['precision']} | {row['batch_size']} | {row['computes']} | {row['seconds']:.1f} | "
            f"{row['users_per_second']:.0f} | {row['gflops']:.1f} | {share} | {100 * row['same_top_k']:.1f}% | {100 * row['same_set']:.1f}% | "
            f"{100 * row['overlap']:.1f}% |"
        )
    return dict(rows=rows, peaks=peaks, users=len(histories), seconds=rows[0]["seconds"] if rows else None)


# ------------------------------------------------------------------------------------------------ main


def main(argv=None) -> dict:
    (args,) = HfArgumentParser(DecodeBenchmarkArguments).parse_args_into_dataclasses(args=argv)
    if args.quick:
        args.num_items = min(args.num_items, 2000)
        args.batch_sizes = [8]
        args.num_test_users = min(args.num_test_users, 512)
        args.fast_repeats = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    set_seed(args.seed)
    if args.model_name_or_path:
        from hf_tiger.training.evaluation import load_model_and_tokenizer

        model, tok = load_model_and_tokenizer(args.model_name_or_path)
        model = model.to(device=args.device, dtype=getattr(torch, args.dtype)).eval()
    else:
        tok = build_tokenizer(args)
        model = build_model(tok, args)
    if not args.precisions:
        raise ValueError("--precisions needs at least one setting (auto, fp32 or bf16, optionally @BATCH_SIZE)")
    settings = [parse_setting(setting) for setting in args.precisions]
    num_parameters = sum(p.numel() for p in model.parameters())
    device_name = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU x{torch.get_num_threads()}"
    )
    print(
        f"# decode benchmark: {len(tok.item_ids):,} items, {tok.num_levels} levels {list(tok.codebook_sizes)}, "
        f"vocab {model.config.vocab_size}, model {num_parameters / 1e6:.2f}M parameters ({args.dtype}), "
        f"beams {args.num_beams}, top-k {args.top_k}, histories of {args.history_length} items, {device_name}, "
        f"load average {load_average()}"
    )

    methods = ["unconstrained", "transformers+processor", "transformers+prefix_fn", "fast (ours)"]
    with torch.no_grad():
        warm_histories, warm_users = random_users(tok, 2, args, seed=10_000)
        warm = tok.batch_encode_histories(warm_histories, user_ids=warm_users, return_tensors="pt").to(
            args.device
        )
        for method in ["fast (ours)"] if args.skip_table else methods:
            run_method(method, model, tok, warm, args)

        rows = []
        for batch_size in [] if args.skip_table else args.batch_sizes:
            histories, user_ids = random_users(tok, batch_size, args, seed=batch_size)
            batch = tok.batch_encode_histories(histories, user_ids=user_ids, return_tensors="pt").to(
                args.device
            )
            results = {}
            for method in methods:
                repeats = args.fast_repeats if method == "fast (ours)" else args.transformers_repeats
                runs = [run_method(method, model, tok, batch, args) for _ in range(max(1, repeats))]
                median = statistics.median(r[0] for r in runs)
                best = min(runs, key=lambda r: abs(r[0] - median))
                results[method] = best
            reference = results["transformers+processor"]
            for method in methods:
                seconds, constraint, sequences, scores = results[method]
                same = ""
                if method != "unconstrained":
                    same = compare_results(sequences, scores, reference[2], reference[3])
                rows.append(
                    dict(
                        batch=batch_size,
                        method=method,
                        seconds=seconds,
                        per_user_ms=1000 * seconds / batch_size,
                        constraint=constraint,
                        share=constraint / seconds if method != "unconstrained" else None,
                        speedup=reference[0] / seconds,
                        same=same,
                    )
                )

    if rows:
        print_table(rows)

    full = None
    if not args.skip_full_eval:
        full = full_evaluation(args, model, tok, settings)
    print(f"load average at the end: {load_average()}")
    return dict(rows=rows, full_evaluation=full)


if __name__ == "__main__":
    main(sys.argv[1:])
