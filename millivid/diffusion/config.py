"""Diffusion schedule and sampler configuration (paper A.2)."""

from __future__ import annotations

from dataclasses import dataclass

from millivid.diffusion.schedule import Schedule


@dataclass(frozen=True)
class DiffusionConfig:
    """Shifted cosine log-SNR schedule, v-prediction, DDIM, classifier-free guidance."""

    shift: float = 1.0  # Simple Diffusion shift, level-independent (paper: 1.0)
    context_dropout: float = 0.1  # paper A.2: drop all context tokens w.p. 0.1 for CFG
    sample_steps: int = 50  # DDIM steps per rollout step
    # DDIM eta in [0, 1]: 0 = deterministic (the paper's sampler), 1 = DDPM ancestral steps
    sample_eta: float = 0.0
    guidance: float = 1.0  # CFG scale; 1.0 = off (paper tries 1.5)
    # conditioning augmentation (not in the paper): in training, the context tokens coarser than
    # the target are noised to a time drawn uniformly in [0, context_noise] per sample, and the
    # model is told that time; rollouts noise the generated coarse context to
    # sample_context_noise. 0 = off
    context_noise: float = 0.0
    sample_context_noise: float = 0.0
    # which context tokens: "coarse" (coarser than the target) or "all" (every context token:
    # recent frames are generated too; the full-resolution methods have no coarse context)
    context_noise_scope: str = "coarse"

    @property
    def schedule(self) -> Schedule:
        """The noise schedule of ``shift``."""
        return Schedule(self.shift)
