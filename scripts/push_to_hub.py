#!/usr/bin/env python
"""Package a trained TIGER run as one recommender repo and upload it to the Hugging Face Hub (or save it locally).

    python scripts/push_to_hub.py --run_dir runs/demo-ml-100k --repo_id org/tiger-ml100k --private
    python scripts/push_to_hub.py --run_dir runs/beauty --save_dir hub/tiger-beauty      # local folder only

The repo holds TIGER (weights, config, generation config, remote code), the tokenizer, the RQ-VAE in `rqvae/`,
the sentence encoder name (`hf_tiger.json`), the item text (`items.jsonl`), `results.json` and a model card built
from `model_cards/tiger_recommender.md`. The token comes from `--token`, `$HF_TOKEN` or `huggingface-cli login`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

import hf_tiger  # noqa: F401  (registers the Auto classes)
from hf_tiger.hub import TigerRecommender


@dataclass
class RunArguments:
    run_dir: str = field(metadata={"help": "Training run folder: best model + tokenizer, rqvae/, results.json."})
    rqvae_path: str | None = field(default=None, metadata={"help": "RQ-VAE folder (default: <run_dir>/rqvae)."})
    results_file: str | None = field(default=None, metadata={"help": "Default: <run_dir>/results.json."})
    dataset: str | None = field(default=None, metadata={"help": "Data set id (default: from results.json)."})
    data_dir: str | None = field(default=None, metadata={"help": "Data folder, for the item text."})
    sentence_encoder: str | None = field(
        default=None, metadata={"help": "Item-text encoder name (default: the one recorded in results.json)."}
    )
    no_item_text: bool = field(default=False, metadata={"help": "Do not include items.jsonl."})
    transition_prior: bool | None = field(
        default=None,
        metadata={
            "help": "Ship the training transition counts fused into the search (transition_prior.safetensors); "
            "default: when the run chose a prior weight on validation (--prior_weights)."
        },
    )


@dataclass
class HubArguments:
    repo_id: str | None = field(default=None, metadata={"help": "Hub repo id, e.g. org/tiger-beauty."})
    save_dir: str | None = field(default=None, metadata={"help": "Also (or only) write the repo folder here."})
    private: bool = field(default=False, metadata={"help": "Create the repo as private."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: $HF_TOKEN or cached login)."})
    commit_message: str = field(default="Upload TIGER recommender", metadata={"help": "Commit message."})
    revision: str | None = field(default=None, metadata={"help": "Branch to push to."})
    create_pr: bool = field(default=False, metadata={"help": "Open a pull request instead of committing."})
    license: str | None = field(default=None, metadata={"help": "License id for the model card, e.g. apache-2.0."})
    tags: list[str] = field(default_factory=list, metadata={"help": "Extra model card tags."})


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser((RunArguments, HubArguments))
    if argv is None and len(sys.argv) == 2 and sys.argv[1].endswith((".json", ".yaml", ".yml")):
        loader = parser.parse_json_file if sys.argv[1].endswith(".json") else parser.parse_yaml_file
        run_args, hub_args = loader(sys.argv[1])
    else:
        run_args, hub_args = parser.parse_args_into_dataclasses(args=argv)
    if hub_args.repo_id is None and hub_args.save_dir is None:
        parser.error("give --repo_id (upload) and/or --save_dir (local folder)")

    recommender = TigerRecommender.from_training_run(
        run_args.run_dir,
        rqvae_path=run_args.rqvae_path,
        results_file=run_args.results_file,
        dataset_name=run_args.dataset,
        data_dir=run_args.data_dir,
        sentence_encoder=run_args.sentence_encoder,
        include_item_text=not run_args.no_item_text,
        include_transition_prior=run_args.transition_prior,
    )
    card_kwargs = {"license": hub_args.license, "tags": hub_args.tags or None}
    if hub_args.save_dir is not None:
        files = recommender.save_pretrained(hub_args.save_dir, repo_id=hub_args.repo_id, **card_kwargs)
        print(f"wrote {len(files)} files to {hub_args.save_dir}:")
        for name in files:
            print(f"  {name}")
    if hub_args.repo_id is not None:
        commit = recommender.push_to_hub(
            hub_args.repo_id,
            private=hub_args.private,
            token=hub_args.token,
            commit_message=hub_args.commit_message,
            revision=hub_args.revision,
            create_pr=hub_args.create_pr,
            **card_kwargs,
        )
        print(f"pushed to {getattr(commit, 'commit_url', None) or hub_args.repo_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
