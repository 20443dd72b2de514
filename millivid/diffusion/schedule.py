"""Simple Diffusion's shifted cosine noise schedule in log-SNR form, and v-prediction (paper A.2).

Continuous time ``t`` in [0, 1]: 0 is (almost) clean, 1 is (almost) pure noise. With
``z = alpha * x0 + sigma * eps`` and ``alpha^2 + sigma^2 = 1``:

    logsnr(t) = -2 log tan(pi * u / 2) - 2 log(shift),   u = u_min + t * (u_max - u_min)

``u`` clips the cosine schedule so that log-SNR is finite: ``logsnr(0) = LOGSNR_MAX - 2 log shift``
and ``logsnr(1) = LOGSNR_MIN - 2 log shift`` (``LOGSNR_MAX = -LOGSNR_MIN = 15``, Simple
Diffusion's clip). **Shift**: the schedule's noise-to-signal ratio ``sigma / alpha`` is multiplied
by ``shift`` at every t, i.e. SNR is divided by ``shift^2``; ``shift > 1`` is noisier
(Simple Diffusion's shift for resolution d over base resolution d_0 is ``shift = d / d_0``).
The paper uses ``shift = 1.0`` (the plain cosine schedule), the same for every latent level.

v-prediction (Salimans & Ho): ``v = alpha * eps - sigma * x0``; then
``x0 = alpha * z - sigma * v`` and ``eps = sigma * z + alpha * v``.
All functions are pure and broadcast over any shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

LOGSNR_MAX = 15.0
LOGSNR_MIN = -15.0


def _u_bounds() -> tuple[float, float]:
    """Cosine-schedule time bounds whose unshifted log-SNR is LOGSNR_MAX and LOGSNR_MIN."""
    u_min = 2.0 / math.pi * math.atan(math.exp(-LOGSNR_MAX / 2))
    u_max = 2.0 / math.pi * math.atan(math.exp(-LOGSNR_MIN / 2))
    return u_min, u_max


def logsnr(t: Tensor, shift: float = 1.0) -> Tensor:
    """log(alpha^2 / sigma^2) at times ``t`` (any shape, values in [0, 1]); decreasing in t."""
    if shift <= 0:
        raise ValueError(f"diffusion.shift = {shift}: must be > 0 (1.0 = plain cosine)")
    u_min, u_max = _u_bounds()
    u = u_min + t.double().clamp(0.0, 1.0) * (u_max - u_min)
    out = -2.0 * torch.log(torch.tan(math.pi * u / 2)) - 2.0 * math.log(shift)
    return out.to(t.dtype if t.is_floating_point() else torch.float32)


def alpha_sigma(lam: Tensor) -> tuple[Tensor, Tensor]:
    """(alpha, sigma) from log-SNR ``lam``: alpha^2 = sigmoid(lam), sigma^2 = sigmoid(-lam)."""
    return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()


@dataclass(frozen=True)
class Schedule:
    """The shifted cosine schedule of one ``shift`` (``DiffusionConfig.schedule``): the one
    object training, the DDIM sampler and conditioning augmentation take."""

    shift: float = 1.0

    def __post_init__(self) -> None:
        if not self.shift > 0:
            raise ValueError(f"diffusion.shift = {self.shift}: must be > 0 (1.0 = plain cosine)")

    def logsnr(self, t: Tensor) -> Tensor:
        """log-SNR at times ``t`` (``logsnr``)."""
        return logsnr(t, self.shift)

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(alpha, sigma) at times ``t``, shaped like ``t``."""
        return alpha_sigma(self.logsnr(t))


COSINE = Schedule()  # the paper's plain cosine schedule (shift 1)


def diffuse(x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Noised latents ``z = alpha * x0 + sigma * eps`` (alpha/sigma broadcast against x0)."""
    return alpha * x0 + sigma * eps


def v_from_x0_eps(x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Velocity target ``v = alpha * eps - sigma * x0``."""
    return alpha * eps - sigma * x0


def x0_from_v(z: Tensor, v: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Clean estimate ``x0 = alpha * z - sigma * v``."""
    return alpha * z - sigma * v


def eps_from_v(z: Tensor, v: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Noise estimate ``eps = sigma * z + alpha * v``."""
    return sigma * z + alpha * v


def v_from_x0(z: Tensor, x0: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """The velocity that makes ``x0_from_v(z, v) == x0``: ``v = (alpha * z - x0) / sigma``."""
    return (alpha * z - x0) / sigma


def sample_time(batch: int, generator: torch.Generator | None = None) -> Tensor:
    """Continuous training times, uniform in [0, 1]: float32 [batch]."""
    return torch.rand(batch, generator=generator)
