#!/usr/bin/env python
"""Recommend the next items for a history of item ids with a saved TIGER model, shown with item text.

Usage:
    python scripts/recommend.py --model_name_or_path runs/demo-ml-100k --items 1 50 181 \
        [--user_id 42] [--top_k 10] [--dataset ml-100k --data_dir ../shared/data]
"""

import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_tiger.training.evaluation import (
    coerce_item_ids,
    item_texts,
    load_model_and_tokenizer,
    recommend_with_text,
)


@dataclass
class RecommendArguments:
    model_name_or_path: str = field(metadata={"help": "Folder with the saved model and tokenizer."})
    items: list[str] = field(default_factory=list, metadata={"help": "History item ids, oldest first."})
    user_id: str | None = field(default=None, metadata={"help": "User id (hashed into the user token)."})
    top_k: int = field(default=10, metadata={"help": "Items to return."})
    num_beams: int | None = field(default=None, metadata={"help": "Beams (default: the model's, >= top_k)."})
    dataset: str | None = field(default=None, metadata={"help": "Dataset whose item text to show."})
    data_dir: str | None = field(default=None, metadata={"help": "Data root of the dataset."})


def main(argv=None) -> list:
    (args,) = HfArgumentParser(RecommendArguments).parse_args_into_dataclasses(args=argv)
    if not args.items:
        raise SystemExit("give the history with --items ID [ID ...]")
    model, tokenizer = load_model_and_tokenizer(args.model_name_or_path)
    history = coerce_item_ids(args.items, tokenizer)
    texts = item_texts(args.dataset, args.data_dir)
    user_ids = None
    if args.user_id is not None and tokenizer.num_user_buckets > 0:
        user_ids = coerce_item_ids([args.user_id], tokenizer)
    (ranked,) = recommend_with_text(
        model, tokenizer, [history], user_ids=user_ids, top_k=args.top_k, num_beams=args.num_beams, texts=texts
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
