"""TigerRecommender: one folder / Hub repo holding everything a trained TIGER recommender needs.

Layout (`save_pretrained` and `push_to_hub` produce the same files):

    config.json, generation_config.json, model.safetensors   TIGER (+ its remote code, auto_map)
    tokenizer_config.json, semantic_ids.json, ...             the SemanticIDTokenizer
    pipeline_tiger.py                                         the "next-item-recommendation" pipeline (remote code)
    rqvae/config.json, rqvae/model.safetensors, ...           the RQ-VAE (cold start)
    configuration_rqvae.py, modeling_rqvae.py                 its remote code, also at the root (see below)
    hf_tiger.json                                             sentence encoder, data set, catalogue fingerprint
    transition_prior.safetensors                              the count prior fused into the search, when given
    items.jsonl                                               item id -> text (+ raw fields), when known
    results.json                                              test metrics and training config, when given
    README.md                                                 the model card
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, HfApi
from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer
from transformers.utils import cached_file, logging

from .. import __version__
from .. import pipelines as _pipelines
from ..cold_start import add_items as _add_items
from ..cold_start import portable_encoder_name
from ..models.tiger.generation_tiger import TRANSITION_PRIOR_FILE, TransitionPrior
from .model_card import create_model_card, load_results

logger = logging.get_logger(__name__)

HF_TIGER_CONFIG_NAME = "hf_tiger.json"
ITEMS_FILE_NAME = _pipelines.ITEMS_FILE_NAME
RESULTS_FILE_NAME = "results.json"
RQVAE_SUBFOLDER = "rqvae"
PIPELINE_FILE_NAME = _pipelines.PIPELINE_FILE_NAME
LAYOUT_FORMAT = "hf_tiger.recommender"
LAYOUT_VERSION = 1


def _normalize_items(items: Any) -> dict[Any, dict[str, Any]]:
    """Item table -> `{item_id: record}`; each record has `item_id` and (when known) `text`."""
    if items is None:
        return {}
    table: dict[Any, dict[str, Any]] = {}
    if isinstance(items, Mapping):
        for item_id, value in items.items():
            fields = dict(value) if isinstance(value, Mapping) else {"text": value}
            table[item_id] = {"item_id": item_id, **{k: v for k, v in fields.items() if k != "item_id"}}
        return table
    for position, record in enumerate(items):
        if not isinstance(record, Mapping) or "item_id" not in record:
            raise ValueError(f"items[{position}]: expected a mapping with an 'item_id' key, got {record!r}")
        table[record["item_id"]] = {"item_id": record["item_id"], **{k: v for k, v in record.items() if k != "item_id"}}
    return table


def _model_size(config: Any) -> str:
    decoder_layers = getattr(config, "num_decoder_layers", None) or config.num_layers
    kind = "T5 encoder-decoder with a causal encoder" if getattr(config, "causal_encoder", False) else "T5 encoder-decoder"
    size = (
        f"{kind}, {config.num_layers}+{decoder_layers} layers, d_model {config.d_model}, "
        f"{config.num_heads} heads, d_ff {config.d_ff}"
    )
    items = int(getattr(config, "num_item_embeddings", 0) or 0)
    prefixes = int(getattr(config, "num_prefix_embeddings", 0) or 0)
    if items:
        size += f", learned item-ID embeddings for {items:,} items"
    if prefixes:
        size += f", learned output vectors for {prefixes:,} semantic-ID prefixes"
    return size


class TigerRecommender:
    r"""
    A trained TIGER recommender as one object: model, tokenizer, RQ-VAE, sentence encoder name and item table.

    Saves to (and loads from) one folder or Hub repo with the layout in this module's docstring, so the
    same repo serves `AutoModelForSeq2SeqLM` / `AutoTokenizer` / `AutoModel(subfolder="rqvae")`, the
    `"next-item-recommendation"` pipeline, and cold start.

    Args:
        model ([`TigerForConditionalGeneration`]): the trained TIGER model.
        tokenizer ([`SemanticIDTokenizer`]): its tokenizer (same catalogue as the model).
        rqvae ([`RQVAEModel`], *optional*): the RQ-VAE that produced the semantic IDs; needed for cold start.
        sentence_encoder (`str`, *optional*): name of the sentence encoder that embedded the item text
            (e.g. `"sentence-transformers/all-MiniLM-L6-v2"`).
        items (*optional*): item table: `{item_id: text}`, `{item_id: record}`, or an iterable of records
            with `item_id` (and `text`), e.g. the `datasets.Dataset` from `hf_tiger.data.load_items`.
        dataset_name (`str`, *optional*): data set id, e.g. `"amazon-p5/beauty"`.
        results (`dict`, *optional*): the run's `results.json` (test metrics, config, versions).
        transition_prior ([`TransitionPrior`], *optional*): training transition counts that [`recommend`] fuses into
            the beam search by default (`item_prior=None` turns it off for one call); saved with the recommender.

    Example:

    ```python
    >>> rec = TigerRecommender(model, tok, rqvae, sentence_encoder="sentence-transformers/all-MiniLM-L6-v2",
    ...                        items=load_items("amazon-p5/beauty"), dataset_name="amazon-p5/beauty")  # doctest: +SKIP
    >>> rec.save_pretrained("tiger-beauty"); rec.push_to_hub("org/tiger-beauty", private=True)  # doctest: +SKIP
    >>> TigerRecommender.from_pretrained("org/tiger-beauty").recommend([[12, 7, 431]], top_k=10)  # doctest: +SKIP
    ```
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        rqvae: Any = None,
        sentence_encoder: str | None = None,
        items: Any = None,
        dataset_name: str | None = None,
        results: Mapping[str, Any] | None = None,
        transition_prior: Any = None,
    ):
        self.model = model
        self.transition_prior = transition_prior
        self.tokenizer = tokenizer
        self.rqvae = rqvae
        self.sentence_encoder = portable_encoder_name(sentence_encoder)
        self.items = _normalize_items(items)
        self.dataset_name = dataset_name
        self.results = dict(results) if results is not None else None

    # ------------------------------------------------------------------ use

    def item_text(self, item_id: Any) -> str | None:
        """The item's text, or `None` when the item table does not have it."""
        return self.items.get(item_id, {}).get("text")

    def recommend(self, histories: Sequence[Sequence[Any]], top_k: int = 10, **kwargs) -> Any:
        """`model.recommend(histories, tokenizer=self.tokenizer, top_k=top_k, **kwargs)`, with the recommender's
        `transition_prior` fused into the search unless `item_prior` is passed (`None`: TIGER alone)."""
        kwargs.setdefault("item_prior", self.transition_prior)
        return self.model.recommend(histories, tokenizer=self.tokenizer, top_k=top_k, **kwargs)

    def pipeline(self, **kwargs) -> _pipelines.NextItemRecommendationPipeline:
        """A `"next-item-recommendation"` pipeline over this recommender (item text: a snapshot of `self.items`;
        the `transition_prior` fused unless `item_prior=None` is passed)."""
        texts = {item_id: r["text"] for item_id, r in self.items.items() if r.get("text") is not None}
        kwargs.setdefault("device", self.model.device)
        kwargs.setdefault("item_prior", self.transition_prior)
        return _pipelines.NextItemRecommendationPipeline(
            model=self.model, tokenizer=self.tokenizer, item_texts=texts, task=_pipelines.TASK_NAME, **kwargs
        )

    def add_items(
        self,
        item_ids: Sequence[Any],
        *,
        texts: Sequence[str] | None = None,
        embeddings: Any = None,
        encoder: Any = None,
        records: Iterable[Mapping[str, Any]] | None = None,
    ) -> list[tuple[int, ...]]:
        """Cold start: make new items recommendable without retraining (see [`hf_tiger.add_items`]).

        Args:
            item_ids (`Sequence[int | str]`): the new items' ids.
            texts (`Sequence[str]`, *optional*): their text, embedded with `encoder` (defaults to the
                recommender's `sentence_encoder`) and stored in the item table.
            embeddings (array of shape `(len(item_ids), dim)`, *optional*): precomputed embeddings instead.
            encoder (*optional*): sentence encoder override (name, SentenceTransformer-like, or callable).
            records (iterable of dicts, *optional*): extra item fields to store, one per item.

        Returns:
            `list[tuple[int, ...]]`: the new items' semantic IDs.
        """
        item_ids = list(item_ids)
        records = list(records) if records is not None else [{} for _ in item_ids]
        if len(records) != len(item_ids):
            raise ValueError(f"{len(records)} records for {len(item_ids)} item ids")
        if texts is not None and encoder is None:
            encoder = self.sentence_encoder
        semantic_ids = _add_items(
            self.model, self.tokenizer, self.rqvae, item_ids, texts=texts, embeddings=embeddings, encoder=encoder
        )
        if self.transition_prior is not None:  # the new items have no transitions yet
            self.transition_prior = self.transition_prior.with_catalogue_size(self.tokenizer.catalogue_size)
        for position, item_id in enumerate(item_ids):
            record = {"item_id": item_id, **{k: v for k, v in dict(records[position]).items() if k != "item_id"}}
            if texts is not None:
                record["text"] = texts[position]
            self.items[item_id] = record
        return semantic_ids

    # ------------------------------------------------------------------ save / load

    def check_consistency(self) -> None:
        """Raise `ValueError` when the tokenizer does not match the model (vocabulary layout, or catalogue items
        unknown to the tokenizer; a model catalogue restricted to some of the tokenizer's items is fine) or the
        RQ-VAE's number of levels does not match the tokenizer's."""
        self.model.check_tokenizer(self.tokenizer)
        if self.rqvae is not None and self.rqvae.config.num_levels != self.tokenizer.num_levels - 1:
            raise ValueError(
                f"the RQ-VAE has {self.rqvae.config.num_levels} levels but the tokenizer expects "
                f"{self.tokenizer.num_levels - 1} (plus the collision level)"
            )
        prior = self.transition_prior
        if prior is not None:
            fingerprint = getattr(prior, "catalogue_fingerprint", None)
            if prior.num_items != self.tokenizer.catalogue_size or (
                fingerprint is not None and fingerprint != self.tokenizer.catalogue_fingerprint()
            ):
                raise ValueError(
                    f"the transition prior was built for another catalogue ({prior.num_items} items) than the "
                    f"tokenizer's ({self.tokenizer.catalogue_size} items): rebuild it with "
                    "TransitionPrior.from_recommender(counts, tokenizer)"
                )

    def hf_tiger_config(self) -> dict[str, Any]:
        """The content of `hf_tiger.json`."""
        item_ids = self.tokenizer.item_ids
        return {
            "format": LAYOUT_FORMAT,
            "version": LAYOUT_VERSION,
            "hf_tiger_version": __version__,
            "sentence_encoder": self.sentence_encoder,
            # the sentence encoder's width (the RQ-VAE appends its collaborative dimensions itself at cold start)
            "embedding_dim": (
                self.rqvae.config.text_dim
                if self.rqvae is not None
                else None
            ),
            "dataset": self.dataset_name,
            "rqvae_subfolder": RQVAE_SUBFOLDER if self.rqvae is not None else None,
            "items_file": ITEMS_FILE_NAME if self.items else None,
            "catalogue_size": len(item_ids),
            "catalogue_fingerprint": self.tokenizer.catalogue_fingerprint(),
            "item_id_type": "str" if item_ids and isinstance(item_ids[0], str) else "int",
            "pipeline_task": _pipelines.TASK_NAME,
            "transition_prior_file": TRANSITION_PRIOR_FILE if self.transition_prior is not None else None,
        }

    def model_card(self, repo_id: str, **kwargs) -> Any:
        """The README model card (`huggingface_hub.ModelCard`) for `repo_id`; kwargs go to `create_model_card`."""
        item_ids = self.tokenizer.item_ids
        return create_model_card(
            repo_id=repo_id,
            catalogue_size=len(item_ids),
            num_levels=self.tokenizer.num_levels,
            codebook_sizes=list(self.tokenizer.codebook_sizes),
            num_user_buckets=self.tokenizer.num_user_buckets,
            model_size=_model_size(self.model.config),
            num_parameters=self.model.num_parameters(),
            sentence_encoder=self.sentence_encoder,
            dataset_name=self.dataset_name,
            results=self.results,
            has_item_text=any(r.get("text") is not None for r in self.items.values()),
            example_history=list(item_ids[:3]),
            item_id_kind="strings" if item_ids and isinstance(item_ids[0], str) else "integers",
            max_history=self.tokenizer.max_history,
            has_transition_prior=self.transition_prior is not None,
            **kwargs,
        )

    def save_pretrained(
        self, save_directory: str | os.PathLike, repo_id: str | None = None, **card_kwargs
    ) -> list[str]:
        """Write the recommender folder (see the module docstring for the layout).

        Args:
            save_directory (`str` or `os.PathLike`): the folder (created when missing).
            repo_id (`str`, *optional*): repo id named in the model card; defaults to the folder name.
            card_kwargs: passed to [`create_model_card`] (`license`, `tags`, `training_config`,
                `template_path`).

        Returns:
            `list[str]`: the files written, relative to `save_directory` (POSIX separators), sorted.
        """
        self.check_consistency()
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        before = {p: p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}

        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        _pipelines.save_pipeline_code(directory)
        if self.rqvae is not None:
            self.rqvae.save_pretrained(directory / RQVAE_SUBFOLDER)
            # transformers fetches remote code from the repo root even with `subfolder=`: put a copy there too.
            for code_file in sorted((directory / RQVAE_SUBFOLDER).glob("*.py")):
                target = directory / code_file.name
                if target.exists() and target.read_bytes() != code_file.read_bytes():
                    raise ValueError(f"{target} exists with other content than the RQ-VAE's {code_file.name}")
                shutil.copyfile(code_file, target)
        _pipelines._write_atomic(directory / HF_TIGER_CONFIG_NAME, json.dumps(self.hf_tiger_config(), indent=2) + "\n")
        if self.items:
            order = [i for i in self.tokenizer.item_ids if i in self.items]
            order += [i for i in self.items if i not in set(order)]
            lines = [json.dumps(self.items[i], ensure_ascii=False, default=str) for i in order]
            _pipelines._write_atomic(directory / ITEMS_FILE_NAME, "\n".join(lines) + "\n")
        if self.transition_prior is not None:
            self.transition_prior.save_pretrained(directory, catalogue_fingerprint=self.tokenizer.catalogue_fingerprint())
        if self.results is not None:
            _pipelines._write_atomic(directory / RESULTS_FILE_NAME, json.dumps(self.results, indent=2, default=str) + "\n")
        card = self.model_card(repo_id or directory.resolve().name, **card_kwargs)
        _pipelines._write_atomic(directory / "README.md", str(card))

        files = {p for p in directory.rglob("*") if p.is_file()}
        stale = sorted(p.relative_to(directory).as_posix() for p in files if before.get(p) == p.stat().st_mtime_ns)
        if stale:
            logger.warning(f"{directory} also holds files this save did not write (left in place): {stale[:10]}")
        return sorted(p.relative_to(directory).as_posix() for p in files if before.get(p) != p.stat().st_mtime_ns)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        trust_remote_code: bool | None = None,
        **model_kwargs,
    ) -> TigerRecommender:
        """Load a recommender folder or Hub repo written by [`save_pretrained`] / [`push_to_hub`].

        Args:
            pretrained_model_name_or_path (`str` or `os.PathLike`): repo id (`"org/tiger-beauty"`) or folder.
            revision, token, cache_dir, local_files_only, trust_remote_code: as in `from_pretrained`.
            model_kwargs: passed to `AutoModelForSeq2SeqLM.from_pretrained` (e.g. `device_map`, `dtype`).

        Returns:
            [`TigerRecommender`]; `rqvae` is `None` and `items` empty when the repo has no such files.
        """
        source = str(pretrained_model_name_or_path)
        hub = {
            "revision": revision,
            "token": token,
            "cache_dir": cache_dir,
            "local_files_only": local_files_only,
        }

        def optional_file(name: str) -> str | None:
            return cached_file(
                source,
                name,
                **hub,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
            )

        model = AutoModelForSeq2SeqLM.from_pretrained(source, trust_remote_code=trust_remote_code, **hub, **model_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, **hub)
        meta_path = optional_file(HF_TIGER_CONFIG_NAME)
        meta = json.loads(Path(meta_path).read_text(encoding="utf-8")) if meta_path else {}
        rqvae = None
        if meta.get("rqvae_subfolder"):
            rqvae = AutoModel.from_pretrained(
                source, subfolder=meta["rqvae_subfolder"], trust_remote_code=trust_remote_code, **hub
            )
        items_path = optional_file(meta.get("items_file") or ITEMS_FILE_NAME)
        results_path = optional_file(RESULTS_FILE_NAME)
        prior_path = optional_file(meta["transition_prior_file"]) if meta.get("transition_prior_file") else None
        if meta.get("transition_prior_file") and prior_path is None:
            raise ValueError(f"{source} names {meta['transition_prior_file']} in {HF_TIGER_CONFIG_NAME} but lacks it")
        recommender = cls(
            model,
            tokenizer,
            rqvae=rqvae,
            sentence_encoder=meta.get("sentence_encoder"),
            items=_pipelines.read_item_records(items_path) if items_path else None,
            dataset_name=meta.get("dataset"),
            results=json.loads(Path(results_path).read_text(encoding="utf-8")) if results_path else None,
            transition_prior=TransitionPrior.from_pretrained(prior_path) if prior_path else None,
        )
        recommender.check_consistency()
        return recommender

    @classmethod
    def from_training_run(
        cls,
        run_dir: str | os.PathLike,
        *,
        rqvae_path: str | os.PathLike | None = None,
        results_file: str | os.PathLike | None = None,
        dataset_name: str | None = None,
        data_dir: str | os.PathLike | None = None,
        sentence_encoder: str | None = None,
        include_item_text: bool = True,
        include_transition_prior: bool | None = None,
    ) -> TigerRecommender:
        """Collect a finished training run (`scripts/train_tiger.py` / `scripts/run_pipeline.py`) into a recommender.

        A run folder holds the best TIGER model with its tokenizer, `rqvae/` and `results.json`; the data set
        name and the sentence encoder are read from `results.json` unless given, and the item text from
        `hf_tiger.data.load_items(dataset_name, data_dir)`.

        Args:
            run_dir (`str` or `os.PathLike`): the run's output folder (model + tokenizer files).
            rqvae_path (`str` or `os.PathLike`, *optional*): defaults to `run_dir/rqvae` when it exists.
            results_file (`str` or `os.PathLike`, *optional*): defaults to `run_dir/results.json` when it exists.
            dataset_name (`str`, *optional*): data set id; defaults to `results["dataset"]`.
            data_dir (`str` or `os.PathLike`, *optional*): where the data set lives (for the item text).
            sentence_encoder (`str`, *optional*): defaults to the encoder recorded in `results.json`.
            include_item_text (`bool`, *optional*, defaults to `True`): load the item table (`items.jsonl`).
            include_transition_prior (`bool`, *optional*): ship the training split's transition counts as the
                recommender's `transition_prior`, with the weight and backoff the run chose on validation
                (`results["prior_fusion"]`; weight 1 and backoff 1 when the run chose none). Defaults to `True` when
                the run scored the fusion (`--prior_weights`).

        Returns:
            [`TigerRecommender`]
        """
        run_dir = Path(run_dir)
        if not (run_dir / "config.json").is_file():
            raise FileNotFoundError(f"{run_dir} holds no model (config.json); pass the training run's output_dir")
        tokenizer_dir = run_dir if (run_dir / "tokenizer_config.json").is_file() else run_dir / "tokenizer"
        results_file = Path(results_file) if results_file is not None else run_dir / RESULTS_FILE_NAME
        results = load_results(results_file) if results_file.is_file() else None
        if results is None:
            logger.warning(f"no {results_file}: the model card will have no evaluation results")
        config = (results or {}).get("config") or {}
        dataset_name = dataset_name or (results or {}).get("dataset")
        if sentence_encoder is None:
            sentence_encoder = (config.get("stage1") or {}).get("encoder") or (
                config.get("semantic_ids") or {}
            ).get("encoder_name_or_path")
        rqvae_path = Path(rqvae_path) if rqvae_path is not None else run_dir / RQVAE_SUBFOLDER
        rqvae = AutoModel.from_pretrained(rqvae_path) if (rqvae_path / "config.json").is_file() else None
        if rqvae is None:
            logger.warning(f"no RQ-VAE at {rqvae_path}: the repo will not support cold start (add_items)")
        items = None
        if include_item_text:
            if dataset_name is None:
                raise ValueError("item text needs the data set name (dataset_name=...) or include_item_text=False")
            from hf_tiger.data import load_items

            items = load_items(dataset_name, data_dir=data_dir)
        model = AutoModelForSeq2SeqLM.from_pretrained(run_dir)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        if items is not None:
            known = set(tokenizer.item_ids)
            items = [record for record in items if record["item_id"] in known]
        fusion = (results or {}).get("prior_fusion")
        if include_transition_prior is None:
            include_transition_prior = fusion is not None
        prior = None
        if include_transition_prior:
            if dataset_name is None:
                raise ValueError("the transition prior needs the data set name (dataset_name=...)")
            from hf_tiger.baselines import LastItemTransitionRecommender
            from hf_tiger.data import load_sequences

            counts = LastItemTransitionRecommender().fit(load_sequences(dataset_name, data_dir=data_dir)["train"])
            weight, backoff = (fusion["weight"], fusion["backoff"]) if fusion else (1.0, 1.0)
            prior = TransitionPrior.from_recommender(counts, tokenizer, weight=weight, backoff=backoff)
        return cls(
            model,
            tokenizer,
            rqvae=rqvae,
            sentence_encoder=sentence_encoder,
            items=items,
            dataset_name=dataset_name,
            results=results,
            transition_prior=prior,
        )

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | bool | None = None,
        commit_message: str = "Upload TIGER recommender",
        revision: str | None = None,
        create_pr: bool = False,
        endpoint: str | None = None,
        **card_kwargs,
    ) -> Any:
        """Upload the recommender: exactly the files `save_pretrained` writes, in one commit.

        Args:
            repo_id (`str`): `"org/name"` (created when missing; `exist_ok`).
            private (`bool`, *optional*): visibility of a newly created repo.
            token (`str` or `bool`, *optional*): Hub token; defaults to `$HF_TOKEN` or the cached login.
            commit_message (`str`, *optional*): the commit message.
            revision (`str`, *optional*): branch to commit to.
            create_pr (`bool`, *optional*, defaults to `False`): open a pull request instead of committing.
            endpoint (`str`, *optional*): Hub endpoint (defaults to `$HF_ENDPOINT` / huggingface.co).
            card_kwargs: passed to [`create_model_card`].

        Returns:
            `huggingface_hub.CommitInfo` of the upload commit.
        """
        api = HfApi(endpoint=endpoint, token=token)
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True, token=token)
        with tempfile.TemporaryDirectory(prefix="hf_tiger_push_") as folder:
            files = self.save_pretrained(folder, repo_id=repo_url.repo_id, **card_kwargs)
            operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=os.path.join(folder, name)) for name in files]
            logger.info(f"uploading {len(files)} files to {repo_url.repo_id}")
            return api.create_commit(
                repo_url.repo_id,
                operations,
                commit_message=commit_message,
                token=token,
                revision=revision,
                create_pr=create_pr,
            )


def serve_pipeline_locally(config_class: type) -> None:
    """Make `config_class` ignore the `custom_pipelines` entry of saved `config.json` files.

    Recommender folders name the pipeline's remote code in `config.json` for environments without hf_tiger;
    transformers' `pipeline()` then demands `trust_remote_code=True` even where hf_tiger is installed and has
    registered the task itself. With this, configs loaded through hf_tiger's classes carry no such entry, so
    `pipeline("next-item-recommendation", model=...)` uses the registered pipeline. The remote-code copy of the
    config class (loaded without hf_tiger) is a different class and keeps the entry.
    """
    config_class.custom_pipelines = property(lambda self: {}, lambda self, value: None)


def save_recommender(save_directory: str | os.PathLike, model: Any, tokenizer: Any, **kwargs) -> list[str]:
    """Functional form of [`TigerRecommender.save_pretrained`]: `kwargs` split between the constructor
    (`rqvae`, `sentence_encoder`, `items`, `dataset_name`, `results`) and the card (`repo_id`, ...)."""
    init_names = ("rqvae", "sentence_encoder", "items", "dataset_name", "results")
    init = {k: kwargs.pop(k) for k in init_names if k in kwargs}
    return TigerRecommender(model, tokenizer, **init).save_pretrained(save_directory, **kwargs)
