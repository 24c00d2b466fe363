#!/usr/bin/env python
"""Score a saved TIGER model on a split with constrained beam search over its catalogue.

Reports Recall@K, NDCG@K, MRR@K, catalogue coverage@K, popularity percentile@K and Recall@K on the rows whose
last-item -> target transition occurs in training ("seen") and on the rest (`hf_tiger.metrics`).

Usage:
    python scripts/evaluate.py --model_name_or_path runs/demo-ml-100k --dataset ml-100k \
        --data_dir ../shared/data --split test [--num_beams 20] [--output_file eval.json] \
        [--prior_weight 0.5 --prior_backoff 1.0]   # fuse the training transition counts (TIGER + count prior)
Works under torchrun / accelerate launch as well: each process scores its share of the rows and the metrics are
computed once over all of them (rows duplicated to even out the last batch are dropped):
    accelerate launch --num_processes 2 scripts/evaluate.py --model_name_or_path ... --dataset ... --split test
"""

import json
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_tiger.training import write_json
from hf_tiger.training.evaluation import default_output_path, evaluate_saved_model, trained_with_user_tokens


@dataclass
class EvaluateArguments:
    model_name_or_path: str = field(metadata={"help": "Folder with the saved model and tokenizer."})
    dataset: str = field(default="ml-100k", metadata={"help": "load_sequences name."})
    data_dir: str | None = field(default=None, metadata={"help": "Data root, e.g. ../shared/data."})
    split: str = field(default="test", metadata={"help": "validation or test."})
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "If not saved with the model."})
    num_beams: int = field(default=20, metadata={"help": "Beams of the constrained search."})
    ks: list[int] = field(default_factory=lambda: [5, 10], metadata={"help": "Cut-offs."})
    batch_size: int = field(default=256, metadata={"help": "Users per batch."})
    max_samples: int | None = field(default=None, metadata={"help": "First N rows only (debugging)."})
    use_user_tokens: bool | None = field(
        default=None, metadata={"help": "As in training (default: as recorded in the run's results.json, else yes)."}
    )
    prior_weight: float = field(
        default=0.0,
        metadata={
            "help": "> 0: fuse the training split's last-item transition counts into the search with this weight "
            "(hf_tiger.TransitionPrior; the figures are then TIGER + count prior). Choose it on validation."
        },
    )
    prior_backoff: float = field(default=1.0, metadata={"help": "Popularity pseudo-count of the count prior."})
    output_file: str | None = field(default=None, metadata={"help": "Default MODEL/eval_<split>.json."})


def main(argv=None) -> dict:
    (args,) = HfArgumentParser(EvaluateArguments).parse_args_into_dataclasses(args=argv)
    use_user_tokens = args.use_user_tokens
    if use_user_tokens is None:
        recorded = trained_with_user_tokens(args.model_name_or_path)
        use_user_tokens = True if recorded is None else recorded
    result = evaluate_saved_model(
        args.model_name_or_path,
        args.dataset,
        data_dir=args.data_dir,
        split=args.split,
        tokenizer_name_or_path=args.tokenizer_name_or_path,
        num_beams=args.num_beams,
        ks=args.ks,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        use_user_tokens=use_user_tokens,
        prior_weight=args.prior_weight,
        prior_backoff=args.prior_backoff,
    )
    path = args.output_file or default_output_path(
        args.model_name_or_path, args.split if not args.prior_weight else f"{args.split}_prior"
    )
    if result["hardware"].get("world_size", 1) == 1 or _is_main_process():
        write_json(path, result)
        print(json.dumps(result["metrics"], indent=2))
        print(f"written to {path}")
    return result


def _is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


if __name__ == "__main__":
    main(sys.argv[1:])
