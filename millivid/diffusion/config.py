"""Diffusion schedule and sampler configuration (paper A.2)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiffusionConfig:
    """Shifted cosine log-SNR schedule, v-prediction, DDIM, classifier-free guidance."""

    shift: float = 1.0  # Simple Diffusion shift, level-independent (paper: 1.0)
    context_dropout: float = 0.1  # paper A.2: drop all context tokens w.p. 0.1 for CFG
    sample_steps: int = 50  # DDIM steps per rollout step
    guidance: float = 1.0  # CFG scale; 1.0 = off (paper tries 1.5)


PRESETS = {
    "tiny": DiffusionConfig(sample_steps=4),
    "mini": DiffusionConfig(),
    "paper": DiffusionConfig(),
}
