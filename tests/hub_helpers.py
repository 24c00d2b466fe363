"""Shared test set-up: tiny seeded models (a recommender; a TIGER over ML-100K), an offline Hub cache, and
loading a script from `scripts/` as a module."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import torch

import hf_tiger
from hf_tiger import RQVAEConfig, RQVAEModel, SemanticIDTokenizer, TigerConfig, TigerForConditionalGeneration

EMBEDDING_DIM = 8
NUM_ITEMS = 12
ITEM_IDS = [f"B{index:09d}" for index in range(NUM_ITEMS)]  # ASIN-like string ids
ITEM_TEXTS = {item_id: f"item {index}; brand {index % 3}" for index, item_id in enumerate(ITEM_IDS)}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO_ROOT = Path(__file__).resolve().parents[1]


def tiny_recommender(seed: int = 0, num_items: int = NUM_ITEMS, item_ids=None) -> hf_tiger.TigerRecommender:
    """A random (untrained) but complete recommender: RQ-VAE (k-means initialised), tokenizer, TIGER, item text."""
    item_ids = list(item_ids) if item_ids is not None else ITEM_IDS[:num_items]
    num_items = len(item_ids)
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(num_items, EMBEDDING_DIM, generator=generator)
    torch.manual_seed(seed)
    rqvae = RQVAEModel(
        RQVAEConfig(input_dim=EMBEDDING_DIM, hidden_dims=[16], latent_dim=4, codebook_size=4, num_levels=2)
    )
    rqvae.kmeans_init_(embeddings, seed=seed)
    rqvae.eval()
    codes = rqvae.get_semantic_ids(embeddings)
    tokenizer = SemanticIDTokenizer.from_codes(
        codes, item_ids=item_ids, codebook_size=4, collision_size=num_items, num_user_buckets=4, max_history=6
    )
    model = _tiny_tiger(tokenizer, default_num_beams=8)
    model.eval()
    return hf_tiger.TigerRecommender(
        model,
        tokenizer,
        rqvae=rqvae,
        sentence_encoder="sentence-transformers/all-MiniLM-L6-v2",
        items={item_id: ITEM_TEXTS.get(item_id, f"item {item_id}") for item_id in item_ids},
        dataset_name="amazon-p5/beauty",
        results={"dataset": "amazon-p5/beauty", "test": {"recall@5": 0.25, "ndcg@5": 0.125}},
    )


def _tiny_tiger(tokenizer: SemanticIDTokenizer, default_num_beams: int) -> TigerForConditionalGeneration:
    """A random 1+1-layer, d_model 16 TIGER holding the tokenizer's catalogue."""
    config = TigerConfig.from_tokenizer(
        tokenizer, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2,
        default_num_beams=default_num_beams,
    )
    model = TigerForConditionalGeneration(config)
    model.set_catalogue(tokenizer.catalogue_token_ids())
    return model


def tiny_ml100k_tiger(folder: Path, num_items: int = 1682) -> Path:
    """An untrained but complete TIGER over ML-100K's catalogue (random codes), saved with its tokenizer."""
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 16, (num_items, 2), generator=generator)
    tokenizer = SemanticIDTokenizer.from_codes(
        codes, item_ids=list(range(1, num_items + 1)), codebook_size=16, collision_size=64, num_user_buckets=8
    )
    _tiny_tiger(tokenizer, default_num_beams=10).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def load_script(relative_path: str, monkeypatch) -> ModuleType:
    """Import `scripts/<relative_path>` as a module (registered in `sys.modules` for the test's duration)."""
    path = REPO_ROOT / "scripts" / relative_path
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, script)  # dataclasses look their module up
    spec.loader.exec_module(script)
    return script


def fill_hub_cache(folder: Path, cache_dir: Path, repo_id: str, commit: str = COMMIT) -> Path:
    """Lay `folder` out as the Hub cache does for `repo_id` (`models--org--name/snapshots/<sha>/`, `refs/main`)."""
    repo_dir = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(folder, snapshot)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


# Makes `import hf_tiger` fail (the package is installed in the venv, editable), as on a machine without it.
_BLOCK_HF_TIGER = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class _NoHfTiger(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "hf_tiger" or name.startswith("hf_tiger."):
                raise ImportError(f"hf_tiger is blocked in this process ({name})")
            return None

    sys.meta_path.insert(0, _NoHfTiger())
    try:
        import hf_tiger  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("hf_tiger is still importable")
    """
)


def run_without_hf_tiger(code: str, hf_home: Path, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python where hf_tiger cannot be imported, offline, with the Hub cache in `hf_home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "PYTHON"))}
    env.update(
        HF_HOME=str(hf_home),
        HF_HUB_CACHE=str(Path(hf_home) / "hub"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
    )
    script = _BLOCK_HF_TIGER + "\n" + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


REPO_ID = "org/tiny-tiger"


def build_hub_cache(tmp_path_factory, recommender: hf_tiger.TigerRecommender | None = None) -> dict:
    """Save a tiny recommender, lay it out as a Hub cache; returns paths and the recommender."""
    recommender = recommender or tiny_recommender()
    root = tmp_path_factory.mktemp("hub")
    folder = root / "folder"
    files = recommender.save_pretrained(folder, repo_id=REPO_ID)
    cache = root / "hf_home" / "hub"
    snapshot = fill_hub_cache(folder, cache, REPO_ID)
    return {"recommender": recommender, "folder": folder, "files": files, "hf_home": root / "hf_home",
            "cache": cache, "snapshot": snapshot}


def use_hub_cache(monkeypatch, cache: Path) -> None:
    """Point this process's Hub cache at `cache` (huggingface_hub reads the constant at call time)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
