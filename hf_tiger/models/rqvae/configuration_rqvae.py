"""Configuration of the RQ-VAE that turns item embeddings into semantic IDs."""

from __future__ import annotations

from transformers import PretrainedConfig

_QUANTIZERS = ("ste", "rotation", "gumbel")
_DISTANCES = ("l2", "cosine")
_ACTIVATIONS = ("relu", "silu", "gelu")
_GUMBEL_SCHEDULES = ("constant", "linear", "exponential", "cosine")


class RQVAEConfig(PretrainedConfig):
    r"""
    Configuration of an [`RQVAEModel`]: an MLP encoder, a residual quantizer with `num_levels` codebooks of
    `codebook_size` codes, and an MLP decoder, as in TIGER (Rajput et al., 2023).

    Args:
        input_dim (`int`, *optional*, defaults to 768):
            Width of the item embeddings fed to the model (768 for Sentence-T5, 384 for MiniLM).
        hidden_dims (`list[int]`, *optional*, defaults to `[512, 256, 128]`):
            Widths of the encoder's hidden layers; the decoder mirrors them.
        latent_dim (`int`, *optional*, defaults to 32):
            Width of the latent vector that is quantized.
        codebook_size (`int`, *optional*, defaults to 256):
            Number of codes per level.
        num_levels (`int`, *optional*, defaults to 3):
            Number of residual quantization levels (length of the semantic ID before the collision level).
        quantizer (`str`, *optional*, defaults to `"rotation"`):
            How gradients cross the quantization: `"ste"` (straight-through estimator at every level),
            `"rotation"` (the rotation trick of Fifty et al., arXiv 2410.06424, with its norm rescaling, applied
            from the encoder output to the sum of the chosen codes) or `"gumbel"` (Gumbel-softmax over each
            level's codes, temperature annealed per training step).
        distance (`str`, *optional*, defaults to `"l2"`):
            `"l2"` (squared Euclidean) or `"cosine"` distance used to pick the nearest code.
        activation (`str`, *optional*, defaults to `"silu"`):
            Activation of the MLPs: `"relu"`, `"silu"` or `"gelu"`.
        dropout (`float`, *optional*, defaults to 0.0):
            Dropout probability inside the MLPs.
        normalize_inputs (`bool`, *optional*, defaults to `False`):
            L2-normalize the input embeddings before encoding (and reconstruct the normalized vectors).
        standardize_inputs (`bool`, *optional*, defaults to `False`):
            Standardize every input dimension to zero mean and unit variance (after the L2 normalization, if any)
            with the statistics of the training embeddings, stored in the model (`input_mean`, `input_std`), and
            reconstruct the standardized vectors (cornac's TIGER does this).
        collaborative_dim (`int`, *optional*, defaults to 0):
            How many of the `input_dim` input dimensions are collaborative item vectors appended to the text
            embedding (`hf_tiger.data.combine_item_embeddings`); 0 for text only. Recorded so that cold start can
            give a new item, which has no interactions yet, its unit-length text embedding and zeros there.
        beta (`float`, *optional*, defaults to 0.25):
            Weight of the commitment term `||r - sg(e)||^2`.
        codebook_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the codebook term `||sg(r) - e||^2`.
        reconstruction_loss (`str`, *optional*, defaults to `"mse"`):
            `"mse"` (sum of squared errors per item, averaged over the batch) or `"cosine"` (1 - cosine).
        kmeans_init (`bool`, *optional*, defaults to `True`):
            Initialize every codebook with k-means on the residuals of real data. [`train_rqvae`] calls
            [`RQVAEModel.kmeans_init_`] on all training embeddings; if a model is trained without it, the
            first training batch is used.
        kmeans_iters (`int`, *optional*, defaults to 25):
            Lloyd iterations per level during k-means initialization.
        autoencoder_warmup_steps (`int`, *optional*, defaults to 60):
            Training steps during which the quantizer is bypassed (plain autoencoder, reconstruction loss only)
            before the codebooks are k-means-initialized on the warmed-up latents. Initializing on the latents of
            a random encoder works poorly: they move a lot in the first steps and leave most codes stale.
        dead_code_threshold (`int`, *optional*, defaults to 20):
            A code unused for this many consecutive training steps is re-seeded from current residuals.
            `0` disables dead-code reset.
        gumbel_temperature (`float`, *optional*, defaults to 0.02):
            Initial Gumbel-softmax temperature (only for `quantizer="gumbel"`). Codes are drawn from
            `softmax(-distance / (mean distance * temperature))`: the default draws mostly the nearest code or
            a close one; values near 1 draw almost uniformly and collapse the codebooks.
        gumbel_min_temperature (`float`, *optional*, defaults to 0.002):
            Final temperature of the schedule.
        gumbel_anneal_steps (`int`, *optional*, defaults to 500):
            Number of training steps over which the temperature goes from `gumbel_temperature` to
            `gumbel_min_temperature`.
        gumbel_schedule (`str`, *optional*, defaults to `"exponential"`):
            `"constant"`, `"linear"`, `"exponential"` or `"cosine"`.
        gumbel_diversity_weight (`float`, *optional*, defaults to 0.1):
            Weight of the Gumbel quantizer's diversity term (1 - normalized entropy of the batch's mean code
            distribution, as in wav2vec 2.0), which keeps items from collapsing onto one code.
        gumbel_hard (`bool`, *optional*, defaults to `True`):
            Use hard one-hot samples with straight-through gradients in the forward pass.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the codebooks' random initialization (before k-means).

    Example:

    ```python
    >>> from hf_tiger import RQVAEConfig, RQVAEModel
    >>> config = RQVAEConfig(input_dim=384, codebook_size=256, num_levels=3, quantizer="rotation")
    >>> model = RQVAEModel(config)
    ```
    """

    model_type = "rqvae"

    def __init__(
        self,
        input_dim: int = 768,
        hidden_dims: list[int] | tuple[int, ...] = (512, 256, 128),
        latent_dim: int = 32,
        codebook_size: int = 256,
        num_levels: int = 3,
        quantizer: str = "rotation",
        distance: str = "l2",
        activation: str = "silu",
        dropout: float = 0.0,
        normalize_inputs: bool = False,
        standardize_inputs: bool = False,
        collaborative_dim: int = 0,
        beta: float = 0.25,
        codebook_loss_weight: float = 1.0,
        reconstruction_loss: str = "mse",
        kmeans_init: bool = True,
        kmeans_iters: int = 25,
        autoencoder_warmup_steps: int = 60,
        dead_code_threshold: int = 20,
        gumbel_temperature: float = 0.02,
        gumbel_min_temperature: float = 0.002,
        gumbel_anneal_steps: int = 500,
        gumbel_schedule: str = "exponential",
        gumbel_diversity_weight: float = 0.1,
        gumbel_hard: bool = True,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        self.input_dim = input_dim
        self.hidden_dims = list(hidden_dims)
        self.latent_dim = latent_dim
        self.codebook_size = codebook_size
        self.num_levels = num_levels
        self.quantizer = quantizer
        self.distance = distance
        self.activation = activation
        self.dropout = dropout
        self.normalize_inputs = normalize_inputs
        self.standardize_inputs = standardize_inputs
        self.collaborative_dim = collaborative_dim
        self.beta = beta
        self.codebook_loss_weight = codebook_loss_weight
        self.reconstruction_loss = reconstruction_loss
        self.kmeans_init = kmeans_init
        self.kmeans_iters = kmeans_iters
        self.autoencoder_warmup_steps = autoencoder_warmup_steps
        self.dead_code_threshold = dead_code_threshold
        self.gumbel_temperature = gumbel_temperature
        self.gumbel_min_temperature = gumbel_min_temperature
        self.gumbel_anneal_steps = gumbel_anneal_steps
        self.gumbel_schedule = gumbel_schedule
        self.gumbel_diversity_weight = gumbel_diversity_weight
        self.gumbel_hard = gumbel_hard
        self.initializer_range = initializer_range
        super().__init__(**kwargs)
        self._validate()

    @property
    def text_dim(self) -> int:
        """Width of the sentence-encoder embedding: the input dimensions before the collaborative ones."""
        return self.input_dim - self.collaborative_dim

    def _validate(self) -> None:
        for name in ("input_dim", "latent_dim", "codebook_size", "num_levels", "kmeans_iters"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RQVAEConfig.{name} must be a positive integer, got {value!r}")
        if self.codebook_size < 2:
            raise ValueError(f"RQVAEConfig.codebook_size must be >= 2, got {self.codebook_size}")
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden_dims):
            raise ValueError(f"RQVAEConfig.hidden_dims must be positive integers, got {self.hidden_dims!r}")
        choices = {
            "quantizer": _QUANTIZERS,
            "distance": _DISTANCES,
            "activation": _ACTIVATIONS,
            "gumbel_schedule": _GUMBEL_SCHEDULES,
            "reconstruction_loss": ("mse", "cosine"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"RQVAEConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"RQVAEConfig.dropout must be in [0, 1), got {self.dropout}")
        for name in ("dead_code_threshold", "autoencoder_warmup_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"RQVAEConfig.{name} must be an integer >= 0, got {value!r}")
        for name in ("beta", "codebook_loss_weight", "gumbel_diversity_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"RQVAEConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.gumbel_min_temperature <= self.gumbel_temperature:
            raise ValueError(
                "RQVAEConfig.gumbel_min_temperature must be in (0, gumbel_temperature], got "
                f"{self.gumbel_min_temperature} (gumbel_temperature={self.gumbel_temperature})"
            )
        if self.gumbel_anneal_steps < 1:
            raise ValueError(f"RQVAEConfig.gumbel_anneal_steps must be >= 1, got {self.gumbel_anneal_steps}")
        if (
            isinstance(self.collaborative_dim, bool)
            or not isinstance(self.collaborative_dim, int)
            or not 0 <= self.collaborative_dim < self.input_dim
        ):
            raise ValueError(
                f"RQVAEConfig.collaborative_dim must be an integer in [0, input_dim={self.input_dim}), "
                f"got {self.collaborative_dim!r}"
            )
        if self.initializer_range <= 0:
            raise ValueError(f"RQVAEConfig.initializer_range must be > 0, got {self.initializer_range}")


__all__ = ["RQVAEConfig"]
