"""The RQ-VAE: MLP encoder, residual quantizer with k-means init and dead-code reset, MLP decoder."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, logging

from .configuration_rqvae import RQVAEConfig

logger = logging.get_logger(__name__)

_ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}


@dataclass
class RQVAEOutput(ModelOutput):
    r"""
    Output of [`RQVAEModel.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            `reconstruction_loss + codebook_loss_weight * codebook_loss + beta * commitment_loss`
            (`+ gumbel_diversity_weight * diversity_loss` for the Gumbel quantizer).
        reconstruction_loss (`torch.FloatTensor` of shape `()`):
            Reconstruction error of the input embeddings, averaged over the batch.
        codebook_loss (`torch.FloatTensor` of shape `()`):
            `sum_l ||sg(r_l) - e_l||^2`, averaged over the batch (moves the codes towards the residuals).
        commitment_loss (`torch.FloatTensor` of shape `()`):
            `sum_l ||r_l - sg(e_l)||^2`, averaged over the batch (keeps the encoder close to its codes).
        diversity_loss (`torch.FloatTensor` of shape `()`):
            `sum_l (1 - H(mean code probabilities_l) / log(codebook_size))` over the batch (`quantizer="gumbel"` in
            training only, else 0).
        codes (`torch.LongTensor` of shape `(batch_size, num_levels)`):
            The code chosen at every level: the item's semantic ID (without a collision level).
        quantized (`torch.FloatTensor` of shape `(batch_size, latent_dim)`):
            Sum of the chosen codebook vectors, as fed to the decoder (carries the estimator's gradients).
        latents (`torch.FloatTensor` of shape `(batch_size, latent_dim)`):
            Encoder output before quantization.
        reconstruction (`torch.FloatTensor` of shape `(batch_size, input_dim)`):
            Decoder output.
        temperature (`torch.FloatTensor` of shape `()`, *optional*):
            Gumbel-softmax temperature used for this step (`quantizer="gumbel"` only).
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    codebook_loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    diversity_loss: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    quantized: torch.FloatTensor | None = None
    latents: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    temperature: torch.FloatTensor | None = None


def rotate_to(source: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    r"""
    The rotation trick (Fifty et al., 2024, arXiv 2410.06424): returns `target` in the forward pass, written as
    `(||target|| / ||source||) * R source`, where `R` is the rotation taking the direction of `source` to the
    direction of `target` (built from a Householder reflection). `R` and the norm ratio are treated as constants,
    so the gradient reaching `source` is the output gradient rotated and rescaled, instead of being copied
    unchanged as in the straight-through estimator.

    Args:
        source (`torch.Tensor` of shape `(batch_size, dim)`): encoder residuals (gradients flow into them).
        target (`torch.Tensor` of shape `(batch_size, dim)`): chosen codebook vectors (treated as constants).
        eps (`float`, *optional*, defaults to 1e-8): guards divisions by zero norms.

    Returns:
        `torch.Tensor` of shape `(batch_size, dim)`, equal to `target` up to rounding.
    """
    target = target.detach()
    source_norm = source.detach().norm(dim=-1, keepdim=True).clamp_min(eps)
    target_norm = target.norm(dim=-1, keepdim=True).clamp_min(eps)
    u = source.detach() / source_norm
    q = target / target_norm
    w = u + q
    w = w / w.norm(dim=-1, keepdim=True).clamp_min(eps)
    # R x = x - 2 (w . x) w + 2 (u . x) q, with R u = q.
    rotated = source - 2 * (source * w).sum(-1, keepdim=True) * w + 2 * (source * u).sum(-1, keepdim=True) * q
    return rotated * (target_norm / source_norm)


def kmeans(
    points: torch.Tensor,
    num_clusters: int,
    num_iters: int = 25,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""
    K-means with k-means++ seeding; clusters that end up empty are re-seeded from the points farthest from
    their centre, so on data with at least `num_clusters` distinct points every centre owns a point.

    Args:
        points (`torch.Tensor` of shape `(num_points, dim)`): data to cluster.
        num_clusters (`int`): number of centres.
        num_iters (`int`, *optional*, defaults to 25): Lloyd iterations.
        generator (`torch.Generator`, *optional*): source of randomness (seeding and sampling).

    Returns:
        `torch.Tensor` of shape `(num_clusters, dim)`: the centres.
    """
    points = points.detach().float()
    num_points = points.shape[0]
    if num_points < num_clusters:
        logger.warning(
            f"k-means on {num_points} points for {num_clusters} codes: some codes start as jittered copies; "
            "initialize with more points (e.g. all items) for a well spread codebook."
        )
        picks = torch.randint(num_points, (num_clusters,), generator=generator)
        jitter = torch.randn(num_clusters, points.shape[1], generator=generator) * 1e-3
        return points[picks] + jitter * points.std().clamp_min(1e-6)

    # k-means++ seeding.
    centres = torch.empty(num_clusters, points.shape[1], dtype=points.dtype)
    first = int(torch.randint(num_points, (1,), generator=generator))
    centres[0] = points[first]
    closest = (points - centres[0]).pow(2).sum(-1)
    for k in range(1, num_clusters):
        total = closest.sum()
        if total <= 0:
            pick = int(torch.randint(num_points, (1,), generator=generator))
        else:
            pick = int(torch.multinomial(closest / total, 1, generator=generator))
        centres[k] = points[pick]
        closest = torch.minimum(closest, (points - centres[k]).pow(2).sum(-1))

    point_norms = points.pow(2).sum(-1, keepdim=True)
    for _ in range(num_iters):
        distances = point_norms - 2 * points @ centres.T + centres.pow(2).sum(-1)
        assignment = distances.argmin(-1)
        counts = torch.bincount(assignment, minlength=num_clusters)
        sums = torch.zeros_like(centres).index_add_(0, assignment, points)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled].unsqueeze(-1).to(points.dtype)
        empty = (~filled).nonzero().squeeze(-1)
        if empty.numel():
            # Re-seed empty clusters at the points worst served by their current centre.
            error = distances.gather(1, assignment.unsqueeze(-1)).squeeze(-1)
            centres[empty] = points[error.topk(empty.numel()).indices]
    return centres


class RQVAEMLP(nn.Module):
    """A stack of Linear layers with activations (and dropout) between them, none after the last."""

    def __init__(self, dims: list[int], activation: str, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(d_in, d_out))
            if i < len(dims) - 2:
                layers.append(_ACTIVATIONS[activation]())
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        self.layers = nn.Sequential(*layers)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.layers(hidden)


class RQVAEResidualQuantizer(nn.Module):
    r"""
    `num_levels` codebooks applied in turn to the residual left by the previous levels.

    The codebooks' lifecycle lives in buffers so that it survives `save_pretrained`:
    `initialized` (k-means done), `steps_since_used` `(num_levels, codebook_size)` (training steps since each code
    was last chosen, drives dead-code reset), `code_counts` `(num_levels, codebook_size)` (how often each code was
    chosen in training since its last (re)seeding) and `step` (training steps seen, drives the Gumbel schedule).
    """

    def __init__(self, config: RQVAEConfig):
        super().__init__()
        self.config = config
        levels, size, dim = config.num_levels, config.codebook_size, config.latent_dim
        self.codebooks = nn.Parameter(torch.empty(levels, size, dim))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.register_buffer("steps_since_used", torch.zeros(levels, size, dtype=torch.long))
        self.register_buffer("code_counts", torch.zeros(levels, size, dtype=torch.long))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def temperature(self) -> float:
        """Gumbel-softmax temperature at the current training step, following `config.gumbel_schedule` (the
        annealing starts after the autoencoder warm-up)."""
        cfg = self.config
        start, end = cfg.gumbel_temperature, cfg.gumbel_min_temperature
        annealed_steps = max(0, int(self.step) - cfg.autoencoder_warmup_steps)
        progress = min(1.0, annealed_steps / cfg.gumbel_anneal_steps)
        if cfg.gumbel_schedule == "constant":
            return start
        if cfg.gumbel_schedule == "linear":
            return start + (end - start) * progress
        if cfg.gumbel_schedule == "cosine":
            return end + 0.5 * (start - end) * (1 + math.cos(math.pi * progress))
        return start * (end / start) ** progress

    def distances(self, residual: torch.Tensor, level: int) -> torch.Tensor:
        """Distances `(batch_size, codebook_size)` from residuals `(batch_size, latent_dim)` to a level's codes."""
        codebook = self.codebooks[level]
        if self.config.distance == "cosine":
            return 1 - F.normalize(residual, dim=-1) @ F.normalize(codebook, dim=-1).T
        return (
            residual.pow(2).sum(-1, keepdim=True) - 2 * residual @ codebook.T + codebook.pow(2).sum(-1)
        ).clamp_min(0)

    @torch.no_grad()
    def reset_dead_codes_(self, residual: torch.Tensor, level: int) -> int:
        r"""
        Re-seeds the codes of `level` unused for `config.dead_code_threshold` training steps with residuals of the
        current batch, sampled with probability proportional to their distance to the nearest code (as in
        k-means++), so new codes go where the codebook serves the data worst.

        Args:
            residual (`torch.Tensor` of shape `(batch_size, latent_dim)`): the residuals entering `level`.
            level (`int`): which codebook.

        Returns:
            `int`: the number of codes re-seeded.
        """
        threshold = self.config.dead_code_threshold
        if threshold <= 0:
            return 0
        dead = (self.steps_since_used[level] >= threshold).nonzero().squeeze(-1)
        if dead.numel() == 0:
            return 0
        residual = residual.detach()
        weights = self.distances(residual, level).min(-1).values.float().clamp_min(0) + 1e-12
        replace = residual.shape[0] < dead.numel()
        picks = torch.multinomial(weights, dead.numel(), replacement=replace)
        self.codebooks.data[level, dead] = residual[picks].to(self.codebooks.dtype)
        self.steps_since_used[level, dead] = 0
        self.code_counts[level, dead] = 0
        return int(dead.numel())

    def forward(self, latents: torch.Tensor, deterministic: bool = False):
        r"""
        Quantizes `latents` level by level.

        Args:
            latents (`torch.Tensor` of shape `(batch_size, latent_dim)`): encoder output.
            deterministic (`bool`, *optional*, defaults to `False`): nearest codes only (no Gumbel sampling) and no
                state updates, whatever the module's training flag.

        Returns:
            `(codes, quantized, codebook_loss, commitment_loss, diversity_loss, temperature)`.
        """
        cfg = self.config
        training = self.training and not deterministic
        temperature = self.temperature() if (training and cfg.quantizer == "gumbel") else None
        residual = latents
        quantized = torch.zeros_like(latents)
        codes, codebook_loss, commitment_loss = [], latents.new_zeros(()), latents.new_zeros(())
        diversity_loss = latents.new_zeros(())
        for level in range(cfg.num_levels):
            if training and bool(self.initialized):
                self.reset_dead_codes_(residual, level)
            codebook = self.codebooks[level]
            distances = self.distances(residual, level)
            if temperature is not None:
                # Distances scaled by their per-item mean so the temperature means the same whatever the latent
                # scale; the temperature divides the logits before the Gumbel noise is added, so it sets how
                # often a code other than the nearest is drawn (torch's `tau` alone only changes the soft
                # gradients: the hard sample argmax(logits + noise) would not depend on it).
                scale = distances.detach().mean(-1, keepdim=True).clamp_min(1e-12)
                logits = -distances / scale
                weights = F.gumbel_softmax(logits / temperature, tau=1.0, hard=cfg.gumbel_hard, dim=-1)
                # Diversity term (as in wav2vec 2.0): 1 - normalized entropy of the batch's mean code
                # distribution, discouraging items from drifting onto few codes.
                mean_probs = logits.softmax(-1).mean(0)
                entropy = -(mean_probs * mean_probs.clamp_min(1e-12).log()).sum()
                diversity_loss = diversity_loss + 1 - entropy / math.log(cfg.codebook_size)
                index = weights.argmax(-1)
                level_output = weights @ codebook
                # The codebook/commitment terms pull towards the nearest code, not the sample, so exploration
                # does not drag codes towards residuals they do not serve.
                nearest = codebook[distances.argmin(-1)]
            else:
                index = distances.argmin(-1)
                chosen = nearest = codebook[index]
                if not torch.is_grad_enabled() or cfg.quantizer == "rotation":
                    level_output = chosen.detach()  # the rotation is applied once, to the sum, below
                else:
                    level_output = residual + (chosen - residual).detach()
            codebook_loss = codebook_loss + (residual.detach() - nearest).pow(2).sum(-1).mean()
            commitment_loss = commitment_loss + (residual - nearest.detach()).pow(2).sum(-1).mean()
            if training:
                with torch.no_grad():
                    counts = torch.bincount(index, minlength=cfg.codebook_size)
                    self.code_counts[level] += counts
                    self.steps_since_used[level] += 1
                    self.steps_since_used[level][counts > 0] = 0
            codes.append(index)
            quantized = quantized + level_output
            residual = residual - level_output.detach()
        if cfg.quantizer == "rotation" and temperature is None and torch.is_grad_enabled():
            # One rotation from the encoder output to the full quantized vector. Rotating every level's residual
            # instead scales gradients by ||e_l|| / ||r_l||, large for the small deep residuals, and made training
            # diverge on Beauty.
            quantized = rotate_to(latents, quantized)
        if training:
            self.step += 1
        return (
            torch.stack(codes, dim=-1),
            quantized,
            codebook_loss,
            commitment_loss,
            diversity_loss,
            temperature,
        )


class RQVAEPreTrainedModel(PreTrainedModel):
    """Base class: config class, weight initialization and the main input name of the RQ-VAE."""

    config_class = RQVAEConfig
    base_model_prefix = "rqvae"
    main_input_name = "embeddings"
    supports_gradient_checkpointing = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            # PyTorch's default Linear init keeps activations alive through the deep MLPs.
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                bound = 1 / math.sqrt(module.in_features)
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, RQVAEResidualQuantizer):
            init.normal_(module.codebooks, mean=0.0, std=self.config.initializer_range)
            init.zeros_(module.initialized)
            init.zeros_(module.steps_since_used)
            init.zeros_(module.code_counts)
            init.zeros_(module.step)


class RQVAEModel(RQVAEPreTrainedModel):
    r"""
    Residual-quantized variational autoencoder turning item embeddings into semantic IDs (TIGER, stage 1).

    `embeddings -> encoder -> latents (latent_dim) -> residual quantizer (num_levels x codebook_size) -> decoder`.

    Args:
        config ([`RQVAEConfig`]): the hyperparameters.

    Example:

    ```python
    >>> import torch
    >>> from hf_tiger import RQVAEConfig, RQVAEModel
    >>> model = RQVAEModel(RQVAEConfig(input_dim=16, hidden_dims=[32], latent_dim=8, codebook_size=4))
    >>> _ = model.kmeans_init_(torch.randn(64, 16))
    >>> model.get_semantic_ids(torch.randn(5, 16)).shape
    torch.Size([5, 3])
    ```
    """

    def __init__(self, config: RQVAEConfig):
        super().__init__(config)
        dims = [config.input_dim, *config.hidden_dims, config.latent_dim]
        self.encoder = RQVAEMLP(dims, config.activation, config.dropout)
        self.quantizer = RQVAEResidualQuantizer(config)
        self.decoder = RQVAEMLP(dims[::-1], config.activation, config.dropout)
        if config.standardize_inputs:
            # per-dimension statistics of the training embeddings ([`set_input_statistics_`]), saved with the weights
            self.register_buffer("input_mean", torch.zeros(config.input_dim))
            self.register_buffer("input_std", torch.ones(config.input_dim))
        self.post_init()

    @torch.no_grad()
    def set_input_statistics_(self, embeddings) -> RQVAEModel:
        r"""
        Fits the per-dimension mean and standard deviation that `config.standardize_inputs` applies to every input
        (train_rqvae calls it on the training embeddings before k-means and training).

        Args:
            embeddings (`torch.Tensor` or array-like of shape `(num_items, input_dim)`): at least two items.
        """
        if not self.config.standardize_inputs:
            raise ValueError("set_input_statistics_ needs a model configured with standardize_inputs=True")
        embeddings = self.check_embeddings(embeddings)
        if embeddings.shape[0] < 2:
            raise ValueError(f"input statistics need at least 2 embeddings, got {embeddings.shape[0]}")
        if self.config.normalize_inputs:
            embeddings = F.normalize(embeddings, dim=-1)
        self.input_mean.copy_(embeddings.mean(0))
        # constant dimensions keep their scale instead of dividing by ~0
        self.input_std.copy_(embeddings.std(0).clamp_min(1e-6))
        return self

    @property
    def is_initialized(self) -> bool:
        """Whether the codebooks were initialized from data (k-means)."""
        return bool(self.quantizer.initialized)

    def check_embeddings(self, embeddings) -> torch.Tensor:
        r"""
        Validates embeddings and returns them as a float tensor on the model's device.

        Args:
            embeddings (`torch.Tensor` or array-like of shape `(num_items, input_dim)`).

        Raises:
            `ValueError`: wrong rank or width, or NaN/inf values (naming the first bad row).
        """
        if not isinstance(embeddings, torch.Tensor):
            embeddings = torch.as_tensor(embeddings)
        if embeddings.dim() != 2:
            raise ValueError(
                f"RQVAEModel expects embeddings of shape (num_items, {self.config.input_dim}), "
                f"got shape {tuple(embeddings.shape)}"
            )
        if embeddings.shape[1] != self.config.input_dim:
            raise ValueError(
                f"wrong embedding width: RQVAEModel was configured with input_dim={self.config.input_dim} but got "
                f"embeddings of width {embeddings.shape[1]} (shape {tuple(embeddings.shape)}); embed the items with "
                "the same encoder the model was trained on, or set RQVAEConfig.input_dim"
            )
        if not embeddings.is_floating_point():
            embeddings = embeddings.float()
        finite = torch.isfinite(embeddings).all(-1)
        if not bool(finite.all()):
            bad = (~finite).nonzero().squeeze(-1)
            raise ValueError(
                f"embeddings contain NaN or inf values in {bad.numel()} row(s), first at row {int(bad[0])}; "
                "fix or drop those items before computing semantic IDs"
            )
        return embeddings.to(device=self.device, dtype=self.dtype)

    def _prepare(self, embeddings: torch.Tensor) -> torch.Tensor:
        if self.config.normalize_inputs:
            embeddings = F.normalize(embeddings, dim=-1)
        if self.config.standardize_inputs:
            embeddings = (embeddings - self.input_mean) / self.input_std
        return embeddings

    def encode(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Latents `(batch_size, latent_dim)` of validated embeddings `(batch_size, input_dim)`."""
        return self.encoder(self._prepare(embeddings))

    def forward(self, embeddings: torch.Tensor, return_dict: bool | None = None, **kwargs) -> RQVAEOutput:
        r"""
        Encodes, quantizes and reconstructs a batch of item embeddings.

        In training mode this also updates the codebook state: the step counter advances; during the first
        `config.autoencoder_warmup_steps` steps the quantizer is bypassed (reconstruction loss only); after them,
        if [`kmeans_init_`] was not called (and `config.kmeans_init`), the codebooks are k-means-initialized from
        the batch, and codes unused for `config.dead_code_threshold` steps are re-seeded.

        Args:
            embeddings (`torch.FloatTensor` of shape `(batch_size, input_dim)`): item embeddings.
            return_dict (`bool`, *optional*): kept for API symmetry; an [`RQVAEOutput`] is always returned.

        Returns:
            [`RQVAEOutput`] with `loss` and `codes` `(batch_size, num_levels)`.
        """
        embeddings = self.check_embeddings(embeddings)
        quantizer = self.quantizer
        warming_up = self.training and int(quantizer.step) < self.config.autoencoder_warmup_steps
        if self.training and not warming_up and self.config.kmeans_init and not self.is_initialized:
            if embeddings.shape[0] < 4 * self.config.codebook_size:
                logger.warning(
                    f"k-means-initializing the codebooks from a training batch of {embeddings.shape[0]} "
                    f"items for {self.config.codebook_size} codes; call `model.kmeans_init_(all_embeddings)` "
                    "after the autoencoder warm-up (train_rqvae does) for a better start"
                )
            self.kmeans_init_(embeddings)
        target = self._prepare(embeddings)
        latents = self.encoder(target)
        if warming_up:
            # Plain autoencoder: the quantizer is bypassed (codes reported, no state updates but the step).
            with torch.no_grad():
                codes = quantizer(latents.detach(), deterministic=True)[0]
                quantizer.step += 1
            quantized, temperature = latents, None
            codebook_loss = commitment_loss = diversity_loss = latents.new_zeros(())
        else:
            codes, quantized, codebook_loss, commitment_loss, diversity_loss, temperature = quantizer(latents)
        reconstruction = self.decoder(quantized)
        if self.config.reconstruction_loss == "cosine":
            reconstruction_loss = (1 - F.cosine_similarity(reconstruction, target, dim=-1)).mean()
        else:
            reconstruction_loss = (reconstruction - target).pow(2).sum(-1).mean()
        loss = (
            reconstruction_loss
            + self.config.codebook_loss_weight * codebook_loss
            + self.config.beta * commitment_loss
            + self.config.gumbel_diversity_weight * diversity_loss
        )
        return RQVAEOutput(
            loss=loss,
            reconstruction_loss=reconstruction_loss,
            codebook_loss=codebook_loss,
            commitment_loss=commitment_loss,
            diversity_loss=diversity_loss,
            codes=codes,
            quantized=quantized,
            latents=latents,
            reconstruction=reconstruction,
            temperature=None if temperature is None else torch.tensor(temperature),
        )

    @torch.no_grad()
    def kmeans_init_(
        self,
        embeddings,
        batch_size: int = 8192,
        max_points: int | None = 200_000,
        seed: int = 0,
    ) -> torch.LongTensor:
        r"""
        Initializes every codebook with k-means on the residuals of real data: level 0 on the encoder's latents,
        level `l` on what levels `0..l-1` leave. Resets the usage counters and marks the model initialized.

        Args:
            embeddings (`torch.Tensor` or array of shape `(num_items, input_dim)`): real item embeddings; use all
                items (or a large sample), not one small batch.
            batch_size (`int`, *optional*, defaults to 8192): encoding chunk size.
            max_points (`int`, *optional*, defaults to 200000): fit k-means on a random sample of at most this many
                points (`None`: all).
            seed (`int`, *optional*, defaults to 0): seed of the k-means randomness.

        Returns:
            `torch.LongTensor` of shape `(num_points, num_levels)`: the codes of the points used, after init.
        """
        embeddings = self.check_embeddings(embeddings)
        generator = torch.Generator().manual_seed(seed)
        if max_points is not None and embeddings.shape[0] > max_points:
            embeddings = embeddings[torch.randperm(embeddings.shape[0], generator=generator)[:max_points]]
        was_training = self.training
        self.eval()
        try:
            latents = torch.cat([self.encode(chunk) for chunk in embeddings.split(batch_size)]).float().cpu()
        finally:
            self.train(was_training)
        quantizer = self.quantizer
        residual = latents
        codes = []
        for level in range(self.config.num_levels):
            centres = kmeans(residual, self.config.codebook_size, self.config.kmeans_iters, generator)
            quantizer.codebooks.data[level] = centres.to(quantizer.codebooks)
            index = quantizer.distances(residual.to(quantizer.codebooks), level).argmin(-1).cpu()
            codes.append(index)
            residual = residual - centres[index]
        quantizer.initialized.fill_(True)
        quantizer.steps_since_used.zero_()
        quantizer.code_counts.zero_()
        return torch.stack(codes, dim=-1)

    @torch.no_grad()
    def get_semantic_ids(self, embeddings, batch_size: int = 8192) -> torch.LongTensor:
        r"""
        Semantic IDs of items: the nearest code at every level. Deterministic (no sampling, dropout off, no state
        updates) whatever the training flag.

        Args:
            embeddings (`torch.Tensor` or array of shape `(num_items, input_dim)`): item embeddings.
            batch_size (`int`, *optional*, defaults to 8192): chunk size.

        Returns:
            `torch.LongTensor` of shape `(num_items, num_levels)`, codes in `[0, codebook_size)`, on the CPU.
        """
        embeddings = self.check_embeddings(embeddings)
        was_training = self.training
        self.eval()
        try:
            codes = [
                self.quantizer(self.encode(chunk), deterministic=True)[0].cpu()
                for chunk in embeddings.split(batch_size)
            ]
        finally:
            self.train(was_training)
        if not codes:
            return torch.zeros(0, self.config.num_levels, dtype=torch.long)
        return torch.cat(codes)

    def quantize_codes(self, codes: torch.LongTensor) -> torch.FloatTensor:
        r"""
        Latent vectors of semantic IDs: the sum of their codebook vectors.

        Args:
            codes (`torch.LongTensor` of shape `(batch_size, num_levels)`).

        Returns:
            `torch.FloatTensor` of shape `(batch_size, latent_dim)`.
        """
        codes = torch.as_tensor(codes, device=self.device)
        if codes.dim() != 2 or codes.shape[1] != self.config.num_levels:
            raise ValueError(
                f"codes must have shape (batch_size, {self.config.num_levels}), got {tuple(codes.shape)}"
            )
        if bool(((codes < 0) | (codes >= self.config.codebook_size)).any()):
            raise ValueError(
                f"codes must be in [0, {self.config.codebook_size}), got {codes.min()}..{codes.max()}"
            )
        levels = torch.arange(self.config.num_levels, device=self.device)
        return self.quantizer.codebooks[levels, codes].sum(1)

    @torch.no_grad()
    def decode_codes(self, codes: torch.LongTensor) -> torch.FloatTensor:
        r"""
        Reconstructed embeddings `(batch_size, input_dim)` of semantic IDs `(batch_size, num_levels)`.
        """
        return self.decoder(self.quantize_codes(codes))


__all__ = ["RQVAEModel", "RQVAEOutput", "RQVAEPreTrainedModel", "rotate_to", "kmeans"]
