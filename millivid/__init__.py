"""millivid: hierarchical latents and coarse-to-fine diffusion rollout for long, consistent video."""

__version__ = "0.1.0"
