"""RQ-VAE: config validation, quantizers, k-means init, dead-code reset, save/load, training helper, metrics."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel

import hf_tiger
from hf_tiger import RQVAEConfig, RQVAEModel
from hf_tiger.models.rqvae import compute_rqvae_metrics, semantic_id_statistics, train_rqvae
from hf_tiger.models.rqvae.modeling_rqvae import kmeans, rotate_to

NUM_REAL_ITEMS = 500


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: these tiny matmuls gain nothing from two, and OpenMP spin-waiting makes them
    ~20x slower on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_config(**overrides) -> RQVAEConfig:
    kwargs = dict(
        input_dim=384,
        hidden_dims=[128, 64],
        latent_dim=32,
        codebook_size=16,
        num_levels=3,
        autoencoder_warmup_steps=0,
    )
    kwargs.update(overrides)
    return RQVAEConfig(**kwargs)


@pytest.fixture(scope="module")
def beauty_embeddings(shared_data_dir, tmp_path_factory) -> torch.Tensor:
    """MiniLM embeddings of the first 500 Beauty items ("{title_keywords}; {attributes}")."""
    from hf_tiger.data import embed_items, load_items, minilm_path

    items = load_items("amazon-p5/beauty", data_dir=shared_data_dir).select(range(NUM_REAL_ITEMS))
    embeddings = embed_items(
        items,
        model_name_or_path=str(minilm_path()),
        cache_dir=tmp_path_factory.mktemp("embeddings"),
        device="cpu",
        show_progress_bar=False,
    )
    assert embeddings.shape == (NUM_REAL_ITEMS, 384)
    return torch.from_numpy(np.asarray(embeddings, dtype=np.float32))


# --- config -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("quantizer", "vq"),
        ("distance", "dot"),
        ("codebook_size", 1),
        ("num_levels", 0),
        ("latent_dim", -3),
        ("hidden_dims", [64, 0]),
        ("dropout", 1.5),
        ("beta", -0.1),
        ("dead_code_threshold", -1),
        ("gumbel_min_temperature", 2.0),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        RQVAEConfig(**{field: value})


def test_config_round_trips_and_tolerates_unknown_keys(tmp_path):
    config = tiny_config(quantizer="gumbel", distance="cosine", gumbel_schedule="linear")
    config.save_pretrained(tmp_path)
    payload = json.loads((tmp_path / "config.json").read_text())
    payload["a_setting_from_a_newer_release"] = 1
    (tmp_path / "config.json").write_text(json.dumps(payload))
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, RQVAEConfig)
    assert (loaded.quantizer, loaded.distance, loaded.gumbel_schedule) == ("gumbel", "cosine", "linear")
    assert loaded.hidden_dims == [128, 64]


# --- building blocks ----------------------------------------------------------------------------------


def test_rotate_to_returns_target_and_rotates_the_gradient():
    torch.manual_seed(0)
    source = torch.randn(6, 5, requires_grad=True)
    target = torch.randn(6, 5)
    out = rotate_to(source, target)
    torch.testing.assert_close(out, target, atol=1e-5, rtol=1e-5)

    grad_out = torch.randn(6, 5)
    (out * grad_out).sum().backward()
    for i in range(6):
        s, t = source[i].detach(), target[i]
        u, q = s / s.norm(), t / t.norm()
        w = (u + q) / (u + q).norm()
        rotation = torch.eye(5) - 2 * torch.outer(w, w) + 2 * torch.outer(q, u)
        torch.testing.assert_close(rotation @ u, q, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(rotation.T @ rotation, torch.eye(5), atol=1e-5, rtol=1e-5)
        expected = (t.norm() / s.norm()) * rotation.T @ grad_out[i]
        torch.testing.assert_close(source.grad[i], expected, atol=1e-4, rtol=1e-4)


def test_kmeans_centres_all_own_points():
    generator = torch.Generator().manual_seed(0)
    # Two tight blobs: plain Lloyd from a poor start would leave clusters empty; re-seeding must not.
    points = torch.cat([torch.randn(200, 4) * 0.01, torch.randn(200, 4) * 0.01 + 5])
    centres = kmeans(points, 32, num_iters=10, generator=generator)
    assignment = torch.cdist(points, centres).argmin(-1)
    assert torch.bincount(assignment, minlength=32).min() > 0


def test_forward_output_and_loss_terms():
    model = RQVAEModel(tiny_config(input_dim=24, hidden_dims=[32], latent_dim=8, codebook_size=8))
    model.kmeans_init_(torch.randn(256, 24))
    out = model(torch.randn(10, 24))
    assert out.codes.shape == (10, 3) and out.codes.dtype == torch.long
    assert out.quantized.shape == out.latents.shape == (10, 8)
    assert out.reconstruction.shape == (10, 24)
    expected = out.reconstruction_loss + out.codebook_loss + 0.25 * out.commitment_loss
    torch.testing.assert_close(out.loss, expected)
    # Forward value of the quantized latents is the sum of the chosen code vectors, whatever the estimator.
    torch.testing.assert_close(out.quantized, model.quantize_codes(out.codes), atol=1e-5, rtol=1e-5)


# --- training on real data ----------------------------------------------------------------------------


@pytest.mark.parametrize("quantizer", ["ste", "rotation", "gumbel"])
def test_each_quantizer_trains_on_real_items(beauty_embeddings, quantizer):
    torch.manual_seed(0)
    model = RQVAEModel(tiny_config(quantizer=quantizer, gumbel_anneal_steps=60, dead_code_threshold=10))
    model.kmeans_init_(beauty_embeddings)
    before = compute_rqvae_metrics(model, beauty_embeddings)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(15):
        for batch in beauty_embeddings[torch.randperm(NUM_REAL_ITEMS)].split(128):
            loss = model(batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    after = compute_rqvae_metrics(model, beauty_embeddings)
    assert after["loss"] < 0.8 * before["loss"], (before["loss"], after["loss"])
    assert after["reconstruction_error"] < 0.8 * before["reconstruction_error"]
    assert int(model.quantizer.step) == 15 * 4
    for level in range(3):  # no collapse onto a handful of codes
        assert after[f"code_usage_l{level}"] >= 0.25


def test_kmeans_init_uses_every_code_on_real_items(beauty_embeddings):
    model = RQVAEModel(tiny_config(codebook_size=32))
    assert not model.is_initialized
    init_codes = model.kmeans_init_(beauty_embeddings)
    assert model.is_initialized
    codes = model.get_semantic_ids(beauty_embeddings)
    torch.testing.assert_close(codes, init_codes)
    for level in range(3):
        assert torch.unique(codes[:, level]).numel() == 32, f"level {level} leaves codes unused after k-means"


def test_first_training_batch_initializes_when_kmeans_init_was_not_called(beauty_embeddings):
    model = RQVAEModel(tiny_config())
    model.train()
    model(beauty_embeddings[:256])
    assert model.is_initialized
    assert torch.unique(model.get_semantic_ids(beauty_embeddings)[:, 0]).numel() == 16


def test_autoencoder_warmup_bypasses_the_quantizer_then_initializes(beauty_embeddings):
    model = RQVAEModel(tiny_config(autoencoder_warmup_steps=3))
    codebooks = model.quantizer.codebooks.detach().clone()
    model.train()
    for _ in range(3):
        out = model(beauty_embeddings[:256])
        assert float(out.codebook_loss) == 0 and float(out.commitment_loss) == 0
        torch.testing.assert_close(out.loss, out.reconstruction_loss)
        torch.testing.assert_close(out.quantized, out.latents)
    assert not model.is_initialized and torch.equal(model.quantizer.codebooks, codebooks)
    assert int(model.quantizer.step) == 3
    out = model(
        beauty_embeddings[:256]
    )  # first quantized step: k-means on this batch (no full-data init given)
    assert model.is_initialized and out.commitment_loss.item() > 0


def test_dead_code_reset_revives_unused_codes(beauty_embeddings):
    model = RQVAEModel(tiny_config(dead_code_threshold=3))
    model.kmeans_init_(beauty_embeddings)
    dead = torch.arange(6)
    with torch.no_grad():
        model.quantizer.codebooks[0, dead] = 1e3  # far from every latent: never chosen
    assert not torch.isin(model.get_semantic_ids(beauty_embeddings)[:, 0], dead).any()

    model.train()
    with torch.no_grad():  # the reset needs no optimizer: it only depends on usage counters
        for _ in range(3):
            model(beauty_embeddings[:256])
        assert (model.quantizer.steps_since_used[0, dead] >= 3).all()
        model(beauty_embeddings[:256])  # 4th step: dead codes re-seeded from current residuals
    assert (model.quantizer.codebooks[0, dead].abs() < 1e2).all()
    revived = torch.isin(model.get_semantic_ids(beauty_embeddings)[:, 0], dead)
    assert revived.any(), "re-seeded codes are chosen again"


def test_dead_code_reset_disabled_with_zero_threshold(beauty_embeddings):
    model = RQVAEModel(tiny_config(dead_code_threshold=0))
    model.kmeans_init_(beauty_embeddings)
    with torch.no_grad():
        model.quantizer.codebooks[0, :4] = 1e3
        model.train()
        for _ in range(5):
            model(beauty_embeddings[:128])
    assert (model.quantizer.codebooks[0, :4] == 1e3).all()


# --- determinism, state, save/load --------------------------------------------------------------------


def test_get_semantic_ids_deterministic_and_stateless_even_in_train_mode(beauty_embeddings):
    model = RQVAEModel(tiny_config(quantizer="gumbel", dropout=0.2))
    model.kmeans_init_(beauty_embeddings)
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    first = model.get_semantic_ids(beauty_embeddings)
    second = model.get_semantic_ids(beauty_embeddings, batch_size=37)
    assert torch.equal(first, second)
    assert model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert first.min() >= 0 and first.max() < 16


def test_gumbel_temperature_follows_schedule():
    model = RQVAEModel(
        tiny_config(
            input_dim=8,
            hidden_dims=[8],
            quantizer="gumbel",
            gumbel_temperature=1.0,
            gumbel_min_temperature=0.1,
            gumbel_anneal_steps=4,
            gumbel_schedule="linear",
        )
    )
    model.kmeans_init_(torch.randn(64, 8))
    model.train()
    temperatures = [float(model(torch.randn(32, 8)).temperature) for _ in range(6)]
    assert temperatures[0] == pytest.approx(1.0)
    assert temperatures[2] == pytest.approx(0.55)
    assert temperatures[4] == temperatures[5] == pytest.approx(0.1)
    assert int(model.quantizer.step) == 6


def test_gumbel_temperature_sets_how_often_other_codes_are_drawn(beauty_embeddings):
    def share_not_nearest(temperature: float) -> float:
        model = RQVAEModel(
            tiny_config(
                quantizer="gumbel", gumbel_temperature=temperature, gumbel_min_temperature=temperature
            )
        )
        model.kmeans_init_(beauty_embeddings)
        nearest = model.get_semantic_ids(beauty_embeddings)
        model.train()
        with torch.no_grad():
            sampled = model(beauty_embeddings).codes
        return float((sampled[:, 0] != nearest[:, 0]).double().mean())

    assert share_not_nearest(1e-4) == 0.0
    assert share_not_nearest(10.0) > 0.5


def test_save_load_identical_codes_and_state(beauty_embeddings, tmp_path):
    model = RQVAEModel(tiny_config(quantizer="rotation", dead_code_threshold=5))
    model.kmeans_init_(beauty_embeddings)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for batch in beauty_embeddings.split(100):
        model(batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert type(loaded) is RQVAEModel
    assert loaded.is_initialized
    assert torch.equal(loaded.get_semantic_ids(beauty_embeddings), model.get_semantic_ids(beauty_embeddings))
    for name in ("steps_since_used", "code_counts", "step", "initialized"):
        assert torch.equal(getattr(loaded.quantizer, name), getattr(model.quantizer, name)), name


def test_saved_folder_loads_without_hf_tiger_via_remote_code(tmp_path):
    model = RQVAEModel(tiny_config(input_dim=12, hidden_dims=[16], latent_dim=4, codebook_size=4))
    embeddings = torch.randn(40, 12)
    model.kmeans_init_(embeddings)
    model.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "modeling_rqvae.py").is_file()
    assert (tmp_path / "model" / "configuration_rqvae.py").is_file()
    np.save(tmp_path / "x.npy", embeddings.numpy())
    np.save(tmp_path / "codes.npy", model.get_semantic_ids(embeddings).numpy())
    script = f"""
import sys
sys.modules["hf_tiger"] = None  # any import of hf_tiger now fails
import numpy as np, torch
from transformers import AutoModel
model = AutoModel.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True)
assert "hf_tiger" not in type(model).__module__, type(model).__module__
codes = model.get_semantic_ids(torch.from_numpy(np.load({str(tmp_path / "x.npy")!r})))
assert (codes.numpy() == np.load({str(tmp_path / "codes.npy")!r})).all()
print("ok", type(model).__name__)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ok RQVAEModel" in result.stdout


# --- bad input ----------------------------------------------------------------------------------------


def test_bad_embeddings_raise_clear_errors():
    model = RQVAEModel(tiny_config(input_dim=16, hidden_dims=[16], latent_dim=4, codebook_size=4))
    with pytest.raises(ValueError, match="wrong embedding width.*input_dim=16.*width 384"):
        model.get_semantic_ids(torch.randn(3, 384))
    with pytest.raises(ValueError, match="wrong embedding width"):
        model(torch.randn(3, 15))
    with pytest.raises(ValueError, match=r"shape \(num_items, 16\)"):
        model.get_semantic_ids(torch.randn(16))
    bad = torch.randn(5, 16)
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN.*row 3"):
        model.kmeans_init_(bad)
    bad[3, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        model(bad)
    with pytest.raises(ValueError, match="codes must be in"):
        model.quantize_codes(torch.tensor([[0, 1, 4]]))


def test_train_rqvae_rejects_mismatched_config(tmp_path):
    with pytest.raises(ValueError, match="wrong embedding width"):
        train_rqvae(np.zeros((8, 10), dtype=np.float32), tiny_config(input_dim=12), output_dir=tmp_path)


# --- metrics and the training helper ------------------------------------------------------------------


def test_semantic_id_statistics_counts_collisions_and_usage():
    codes = torch.tensor([[0, 0], [0, 0], [0, 0], [1, 2], [1, 3], [2, 3]])
    stats = semantic_id_statistics(codes, codebook_size=4)
    assert stats["code_usage_l0"] == pytest.approx(3 / 4)
    assert stats["code_usage_l1"] == pytest.approx(3 / 4)
    assert stats["unique_fraction"] == pytest.approx(3 / 6)
    assert stats["collision_fraction"] == pytest.approx(3 / 6)
    assert stats["largest_collision_group"] == 3
    assert stats["num_unique_ids"] == 4
    # level 0: codes 0,0,0,1,1,2 -> p = (1/2, 1/3, 1/6)
    entropy = -(0.5 * np.log(0.5) + (1 / 3) * np.log(1 / 3) + (1 / 6) * np.log(1 / 6))
    assert stats["perplexity_l0"] == pytest.approx(np.exp(entropy))
    uniform = semantic_id_statistics(torch.arange(8).unsqueeze(-1), codebook_size=8)
    assert uniform["perplexity_l0"] == pytest.approx(8.0)
    assert uniform["unique_fraction"] == 1.0 and uniform["largest_collision_group"] == 1


def test_train_rqvae_with_trainer_saves_model_metrics_and_plot(beauty_embeddings, tmp_path):
    model, metrics = train_rqvae(
        beauty_embeddings,
        {"hidden_dims": [64], "codebook_size": 16, "autoencoder_warmup_steps": 4},
        {
            "num_train_epochs": 3,
            "per_device_train_batch_size": 128,
            "eval_strategy": "epoch",
            "warmup_steps": 0,
        },
        output_dir=tmp_path,
    )
    for key in ("reconstruction_error", "code_usage_l0", "perplexity_l2", "unique_fraction"):
        assert key in metrics
    assert metrics["largest_collision_group"] >= 1
    assert metrics["train_steps"] == 3 * 4
    assert model.is_initialized and metrics["kmeans_runtime"] > 0  # k-means on all items after the warm-up
    assert int(model.quantizer.step) == 3 * 4
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    saved = json.loads((tmp_path / "rqvae_metrics.json").read_text())
    assert saved["unique_fraction"] == pytest.approx(metrics["unique_fraction"])
    assert (tmp_path / "code_usage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert torch.equal(
        reloaded.get_semantic_ids(beauty_embeddings), model.get_semantic_ids(beauty_embeddings)
    )
    assert hf_tiger.RQVAEModel is RQVAEModel


def test_standardized_inputs_use_the_training_statistics_and_save_them(beauty_embeddings, tmp_path):
    """`standardize_inputs`: every dimension is centred and scaled with the training embeddings' statistics, which
    are fitted once by train_rqvae, saved with the weights and applied to any later item (cold start included)."""
    model, _ = train_rqvae(
        beauty_embeddings,
        {"hidden_dims": [64], "codebook_size": 16, "autoencoder_warmup_steps": 2, "standardize_inputs": True},
        {"num_train_epochs": 1, "per_device_train_batch_size": 128, "warmup_steps": 0},
        output_dir=tmp_path,
        plot=False,
    )
    torch.testing.assert_close(model.input_mean, beauty_embeddings.mean(0))
    torch.testing.assert_close(model.input_std, beauty_embeddings.std(0).clamp_min(1e-6))
    prepared = model._prepare(beauty_embeddings)
    torch.testing.assert_close(prepared.mean(0), torch.zeros(384), atol=1e-5, rtol=0)
    varying = beauty_embeddings.std(0) > 1e-6  # a constant dimension stays 0 instead of being divided by ~0
    assert varying.sum() > 300
    torch.testing.assert_close(prepared.std(0)[varying], torch.ones(int(varying.sum())), atol=1e-3, rtol=0)
    assert prepared[:, ~varying].abs().max() < 0.05
    reloaded = AutoModel.from_pretrained(tmp_path)
    torch.testing.assert_close(reloaded.input_mean, model.input_mean)
    new_items = beauty_embeddings[:7] + 0.01
    assert torch.equal(reloaded.get_semantic_ids(new_items), model.get_semantic_ids(new_items))
    # the standardization changes what the encoder sees: a model without it encodes other latents
    plain = RQVAEModel(tiny_config(hidden_dims=[64]))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("input_")}, strict=True)
    assert not torch.allclose(plain.encode(beauty_embeddings[:5]), model.encode(beauty_embeddings[:5]))
    # continuing to train a model keeps its statistics instead of refitting them on other embeddings
    before = model.input_mean.clone()
    train_rqvae(beauty_embeddings[:200] * 2, model=model,
                training_args={"num_train_epochs": 1, "per_device_train_batch_size": 128, "warmup_steps": 0},
                output_dir=tmp_path / "more", save=False)
    assert torch.equal(model.input_mean, before)
    with pytest.raises(ValueError, match="standardize_inputs=True"):
        plain.set_input_statistics_(beauty_embeddings)
