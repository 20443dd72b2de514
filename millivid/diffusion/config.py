"""Diffusion schedule and sampler configuration (paper A.2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from millivid.diffusion.schedule import Schedule, alpha_sigma


@dataclass(frozen=True)
class DiffusionConfig:
    """Shifted cosine log-SNR schedule, v-prediction, DDIM, classifier-free guidance."""

    shift: float = 1.0  # Simple Diffusion shift (paper: 1.0, the same for every level)
    # targets at latent level l use the schedule of shift * level_shift^l (not in the paper, which
    # is 1.0: one schedule for every level; < 1: the coarser the level, the less noise at each t)
    level_shift: float = 1.0
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
    # what the training loss averages over (not in the paper): "value", every real latent value
    # of every target token once (the MSE over the latents); "token", every target token once
    # (its values averaged first). The same for methods whose target tokens share one width;
    # mirrored FramePack's patchified coarse targets hold 4^l C values a token, so by value its
    # kept level-0 frames carry 3 / 129 of the loss (mini preset), by token 40 %
    loss_unit: str = "value"

    def __post_init__(self) -> None:
        if not self.level_shift > 0:
            raise ValueError(f"diffusion.level_shift = {self.level_shift}: must be > 0 (1.0 = off)")
        if self.loss_unit not in ("value", "token"):
            raise ValueError(f"diffusion.loss_unit = {self.loss_unit!r}: use value or token")

    @property
    def schedule(self) -> Schedule:
        """The noise schedule of ``shift`` (context noise; targets: ``target_schedule``)."""
        return Schedule(self.shift)

    def target_schedule(self, level: int) -> Schedule:
        """The schedule of targets at latent ``level`` (0 = finest): the DDIM steps of a
        rollout step of that level."""
        return Schedule(self.shift * self.level_shift**level)

    def target_alpha_sigma(self, t: Tensor, level: Tensor) -> tuple[Tensor, Tensor]:
        """(alpha, sigma) at times ``t`` [B] for targets at latent levels ``level`` [B]: each
        element on its ``target_schedule`` (training, where one batch mixes levels)."""
        lam = self.schedule.logsnr(t)
        if self.level_shift != 1.0:  # log(shift * r^l) = log(shift) + l log(r)
            lam = lam - 2.0 * math.log(self.level_shift) * level.to(lam)
        return alpha_sigma(lam)
