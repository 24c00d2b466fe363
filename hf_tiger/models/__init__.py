"""Model definitions: the RQ-VAE (stage 1) and TIGER (stage 2)."""
