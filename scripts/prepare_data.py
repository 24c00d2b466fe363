#!/usr/bin/env python
"""Read a data set, print its statistics and, optionally, embed its item text.

    python scripts/prepare_data.py --dataset amazon-p5/beauty --data_dir ../shared/data
    python scripts/prepare_data.py --dataset ml-100k --embed --output_dir runs/ml-100k-data

Without `--data_dir` the readers use `$HF_TIGER_DATA_DIR`, else their cache folder (downloading MovieLens /
Amazon 2014 from the official source). With `--embed` the item embeddings are computed (or read from the
embeddings cache); with `--output_dir` they are also written to `<output_dir>/item_embeddings.safetensors`.
"""

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser


@dataclass
class PrepareDataArguments:
    dataset: str = field(
        default="amazon-p5/beauty",
        metadata={
            "help": "amazon-p5/<folder>, amazon-2014/<Category>, ml-100k, ml-1m, generic or a data folder."
        },
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Data root (default: $HF_TIGER_DATA_DIR, else the download cache)."}
    )
    max_history: int = field(default=20, metadata={"help": "History length cap of the splits."})
    short_sequences: str = field(
        default="raise", metadata={"help": "Users with < 3 interactions: 'raise' or 'drop' (logged)."}
    )
    embed: bool = field(default=False, metadata={"help": "Compute (or load from cache) the item embeddings."})
    encoder: str | None = field(
        default=None,
        metadata={
            "help": "sentence-transformers model (default: Sentence-T5 online, offline MiniLM otherwise)."
        },
    )
    batch_size: int = field(default=256, metadata={"help": "Encoding batch size."})
    device: str | None = field(default=None, metadata={"help": "Encoding device, e.g. cpu or cuda."})
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "Embeddings cache (default: $HF_TIGER_CACHE/embeddings or ~/.cache/...)."},
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "If set with --embed, write item_embeddings.safetensors here."}
    )


def main(argv: list[str] | None = None) -> dict:
    from hf_tiger.data import (
        dataset_statistics,
        default_encoder,
        embed_items,
        load_items,
        save_item_embeddings,
    )

    (args,) = HfArgumentParser(PrepareDataArguments).parse_args_into_dataclasses(args=argv)
    started = time.time()
    stats = dataset_statistics(
        args.dataset, args.data_dir, max_history=args.max_history, short_sequences=args.short_sequences
    )
    stats["load_seconds"] = time.time() - started
    print(f"dataset: {args.dataset}")
    for key, value in stats.items():
        print(f"  {key:<24} {value:,.6g}" if isinstance(value, float) else f"  {key:<24} {value:,}")

    if args.embed:
        items = load_items(args.dataset, args.data_dir)
        encoder = args.encoder or default_encoder()
        started = time.time()
        embeddings = embed_items(
            items, encoder, batch_size=args.batch_size, cache_dir=args.cache_dir, device=args.device
        )
        stats["embedding_seconds"] = time.time() - started
        stats["embedding_shape"] = list(embeddings.shape)
        print(f"  {'encoder':<24} {encoder}")
        print(f"  {'embeddings':<24} {list(embeddings.shape)} in {stats['embedding_seconds']:.1f}s")
        if args.output_dir:
            path = save_item_embeddings(
                Path(args.output_dir) / "item_embeddings.safetensors", embeddings, items["item_id"], encoder
            )
            print(f"  {'written':<24} {path}")
    return stats


if __name__ == "__main__":
    main(sys.argv[1:])
