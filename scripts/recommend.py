#!/usr/bin/env python
"""Recommend the next items with a saved TIGER model: one history (shown with item text), or every user of a file.

Usage:
    # one history
    python scripts/recommend.py --model_name_or_path runs/demo-ml-100k --items 1 50 181 \
        [--user_id 42] [--top_k 10] [--dataset ml-100k --data_dir ../shared/data]
    # every user of a file (JSONL / CSV / parquet with user_id + history) or of a dataset split, sharded over
    # processes; a killed job re-run with the same --output_dir computes only the missing shards
    python scripts/recommend.py --model_name_or_path runs/beauty-cpu --users_file users.jsonl --output_dir recs/
    accelerate launch --num_processes 2 scripts/recommend.py --model_name_or_path runs/beauty-cpu \
        --dataset amazon-p5/beauty --data_dir ../shared/data --split test --output_dir recs/
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --master_addr HOST --master_port 29500 \
        scripts/recommend.py ...   # node 1: the same with --node_rank 1
"""

import json
import sys
import time
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_tiger.training.evaluation import (
    coerce_item_ids,
    item_texts,
    load_model_and_tokenizer,
    recommend_with_text,
    trained_with_user_tokens,
)


@dataclass
class RecommendArguments:
    model_name_or_path: str = field(metadata={"help": "Folder with the saved model and tokenizer."})
    items: list[str] = field(default_factory=list, metadata={"help": "History item ids, oldest first."})
    user_id: str | None = field(default=None, metadata={"help": "User id (hashed into the user token)."})
    top_k: int = field(default=10, metadata={"help": "Items to return."})
    num_beams: int | None = field(default=None, metadata={"help": "Beams (default: the model's, >= top_k)."})
    dataset: str | None = field(default=None, metadata={"help": "Dataset whose item text to show / users to score."})
    data_dir: str | None = field(default=None, metadata={"help": "Data root of the dataset."})
    users_file: str | None = field(
        default=None, metadata={"help": "Batch mode: JSONL / CSV / parquet with the columns user_id and history."}
    )
    split: str | None = field(default=None, metadata={"help": "Batch mode: score this split of --dataset."})
    output_dir: str | None = field(default=None, metadata={"help": "Batch mode: shards + recommendations file."})
    output_format: str = field(default="jsonl", metadata={"help": "Batch mode: jsonl or parquet."})
    shard_size: int = field(default=1024, metadata={"help": "Batch mode: users per shard (the unit of resuming)."})
    batch_size: int | None = field(default=None, metadata={"help": "Histories per generate() call."})
    precision: str = field(
        default="auto",
        metadata={"help": "auto or fp32 (exact fp32 lists), or bf16 (faster on AMX / AVX512-BF16, near-ties reordered)."},
    )
    use_user_tokens: bool | None = field(
        default=None, metadata={"help": "Pass user ids (default: as recorded in the run's results.json, else yes)."}
    )


def batch_main(args: RecommendArguments, model, tokenizer) -> dict:
    from hf_tiger.batch_recommend import read_users, recommend_to_files

    if not args.output_dir:
        raise SystemExit("batch mode needs --output_dir")
    if args.users_file:
        users = read_users(args.users_file)
    else:
        users = read_users(dataset=args.dataset, data_dir=args.data_dir, split=args.split)
    use_user_tokens = args.use_user_tokens
    if use_user_tokens is None:
        recorded = trained_with_user_tokens(args.model_name_or_path)
        use_user_tokens = True if recorded is None else recorded
    started = time.time()
    result = recommend_to_files(
        model,
        tokenizer,
        users,
        args.output_dir,
        top_k=args.top_k,
        num_beams=args.num_beams,
        use_user_tokens=use_user_tokens and tokenizer.num_user_buckets > 0,
        shard_size=args.shard_size,
        batch_size=args.batch_size,
        output_format=args.output_format,
        model_name=args.model_name_or_path,
        precision=args.precision,
    )
    seconds = time.time() - started
    computed = sum(min(args.shard_size, len(users) - i * args.shard_size) for i in result["shards_computed"])
    result["seconds"] = seconds
    result["users_computed"] = computed
    print(json.dumps(result))
    return result


def main(argv=None):
    (args,) = HfArgumentParser(RecommendArguments).parse_args_into_dataclasses(args=argv)
    model, tokenizer = load_model_and_tokenizer(args.model_name_or_path)
    if args.users_file or args.split:
        return batch_main(args, model, tokenizer)
    if not args.items:
        raise SystemExit("give the history with --items ID [ID ...], or --users_file / --dataset --split")
    history = coerce_item_ids(args.items, tokenizer)
    texts = item_texts(args.dataset, args.data_dir)
    user_ids = None
    if args.user_id is not None and tokenizer.num_user_buckets > 0 and args.use_user_tokens is not False:
        user_ids = coerce_item_ids([args.user_id], tokenizer)
    (ranked,) = recommend_with_text(
        model, tokenizer, [history], user_ids=user_ids, top_k=args.top_k, num_beams=args.num_beams, texts=texts,
        precision=args.precision,
    )
    print("history:")
    for item in history:
        print(f"  {item!s:>10}  {texts.get(item, '')}")
    print("recommendations:")
    for row in ranked:
        print(f"  {row['rank']:>2}. {row['item_id']!s:>10}  score {row['score']:8.3f}  {row['text'] or ''}")
    return ranked


if __name__ == "__main__":
    main(sys.argv[1:])
