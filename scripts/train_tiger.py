#!/usr/bin/env python
"""Train TIGER (stage 2) with Seq2SeqTrainer; validation picks the checkpoint, test is scored once at the end.

Usage:
    python scripts/train_tiger.py scripts/configs/tiger_beauty_paper.yaml \
        --data_dir ../shared/data --tokenizer_name_or_path runs/beauty/tokenizer --output_dir runs/beauty-tiger
    torchrun --nproc_per_node 2 scripts/train_tiger.py CONFIG.yaml ...      # DDP, unchanged
    accelerate launch scripts/train_tiger.py CONFIG.yaml ...
    ... --resume_from_checkpoint last                                        # continue an interrupted run

Without --tokenizer_name_or_path (or --model_name_or_path) the semantic IDs are built first (item-text
embeddings -> RQ-VAE -> tokenizer, single process). Writes OUTPUT_DIR/results.json.
"""

import sys

from transformers import set_seed
from transformers.utils import logging

from hf_tiger.training import (
    build_tiger_model,
    find_rqvae,
    parse_args_with_config,
    prepare_tokenizer,
    train_tiger,
)


def main(argv=None) -> dict:
    data_args, semantic_args, model_args, training_args = parse_args_with_config(args=argv)
    logging.set_verbosity(training_args.get_process_log_level())
    from hf_tiger.data import load_sequences

    sequences = load_sequences(data_args.dataset, data_dir=data_args.data_dir, max_history=data_args.max_history)
    tokenizer, stage1 = prepare_tokenizer(model_args, semantic_args, data_args, training_args)
    set_seed(training_args.seed)
    rqvae = find_rqvae(semantic_args, model_args, stage1, training_args.output_dir) if model_args.embedding_init == "rqvae" else None
    model = build_tiger_model(tokenizer, model_args, rqvae=rqvae)
    results = train_tiger(
        model,
        tokenizer,
        sequences,
        training_args,
        data_args,
        extra_config={"model_arguments": vars(model_args), "stage1": stage1},
    )
    trainer = results.pop("trainer")
    if trainer.is_world_process_zero():
        print(f"\nTest ({data_args.dataset}, {results['test']['num_examples']} users):")
        for key in sorted(k for k in results["test"] if "@" in k):
            print(f"  {key:>10s}  {results['test'][key]:.4f}")
        print(f"epochs {results['train']['epochs']:.2f}, best checkpoint {results['best_validation']['checkpoint']}")
        print(f"results: {training_args.output_dir}/results.json")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
