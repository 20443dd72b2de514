"""DDIM sampling over the shifted cosine schedule, with classifier-free guidance.

``ddim_sample(velocity, noise, times, schedule)`` integrates from t = 1 (pure noise) to t = 0 over
the time grid ``times``; rollouts use ``ddim_times(steps)``, equally spaced times. Because the
times go through the same ``Schedule.logsnr`` as training, the schedule decides where the steps
land in noise level (paper A.2: 50 steps, same shifted schedule). Each step predicts v, forms
(x0, eps) estimates and moves to the next time: ``z' = alpha' * x0 + sigma' * eps`` (eta = 0,
deterministic, the paper's sampler). With ``eta`` > 0 (Song et al.'s DDIM eta; 1 = the DDPM
ancestral step) part of the carried noise is replaced by fresh noise:
``z' = alpha' * x0 + sqrt(sigma'^2 - s^2) * eps + s * fresh``, with
``s = eta * (sigma' / sigma) * sqrt(1 - alpha^2 / alpha'^2)``. The last step returns the x0
estimate itself.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from millivid.diffusion.schedule import COSINE, Schedule, alpha_sigma, eps_from_v, x0_from_v

# velocity(z [B, ...], t [B]) -> the model's v-prediction [B, ...]
Velocity = Callable[[Tensor, Tensor], Tensor]


def ddim_times(steps: int) -> Tensor:
    """Times 1 = t_0 > t_1 > ... > t_steps = 0, equally spaced: float64 [steps + 1]."""
    if steps < 1:
        raise ValueError(f"diffusion.sample_steps = {steps}: need at least 1 DDIM step")
    return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)


def _bcast(x: Tensor, like: Tensor) -> Tensor:
    """[B] -> [B, 1, ..., 1] matching ``like``'s rank, in ``like``'s dtype; a 0-d tensor stays as
    it is (a CPU scalar: no host-to-device copy, which would wait for the GPU)."""
    if x.dim() == 0:
        return x
    return x.to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def ddim_step(
    z: Tensor,
    v: Tensor,
    lam_from: Tensor,
    lam_to: Tensor | None,
    eta: float = 0.0,
    fresh: Tensor | None = None,
) -> Tensor:
    """One DDIM update from log-SNR ``lam_from`` to ``lam_to`` (both [B], or both 0-d for the
    whole batch); ``None`` = final step, returning the x0 estimate. z, v: [B, ...]; with
    ``eta`` > 0, ``fresh``: standard normal noise like z (the module docstring's update)."""
    a, s = alpha_sigma(lam_from)
    ab, sb = _bcast(a, z), _bcast(s, z)
    x0 = x0_from_v(z, v, ab, sb)
    if lam_to is None:
        return x0
    eps = eps_from_v(z, v, ab, sb)
    a2, s2 = alpha_sigma(lam_to)
    if not eta:
        return _bcast(a2, z) * x0 + _bcast(s2, z) * eps
    if fresh is None:
        raise ValueError(f"a DDIM step with eta = {eta} needs fresh noise")
    new = eta * s2 / s * (1.0 - a**2 / a2**2).clamp(min=0.0).sqrt()
    carried = (s2**2 - new**2).clamp(min=0.0).sqrt()
    return _bcast(a2, z) * x0 + _bcast(carried, z) * eps + _bcast(new, z) * fresh


def ddim_sample(
    velocity: Velocity,
    noise: Tensor,
    times: Tensor,
    schedule: Schedule = COSINE,
    on_step: Callable[[int], None] | None = None,
    eta: float = 0.0,
    fresh_noise: Callable[[], Tensor] | None = None,
) -> Tensor:
    """Sample x0 [B, ...] from standard normal ``noise`` [B, ...] over the time grid ``times``.

    ``times``: float64 [steps + 1], from 1 (noise) down to 0 (clean), e.g. ``ddim_times(steps)``;
    one DDIM step per interval, the last returning the x0 estimate. ``velocity(z, t)`` returns the
    v-prediction at times ``t`` [B] (float32). The update coefficients stay CPU scalars: the loop
    never copies to the device, so on a GPU it never waits for the model (a copy per step cost
    ~1 ms of idle GPU each, docs/PERFORMANCE.md). ``eta`` in [0, 1]: the stochastic update of
    the module docstring, drawing standard normal noise like ``noise`` from ``fresh_noise()``
    once per step but the last (0: deterministic, ``fresh_noise`` never called).
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"DDIM eta = {eta}: must be in [0, 1] (0 = deterministic, 1 = DDPM)")
    if eta and fresh_noise is None:
        raise ValueError(f"DDIM with eta = {eta} draws fresh noise: give fresh_noise")
    if times.dim() != 1 or len(times) < 2:
        raise ValueError(
            f"DDIM time grid of shape {tuple(times.shape)}: need a 1-D grid of at least 2 times "
            "(1 down to 0), e.g. ddim_times(steps)"
        )
    steps = len(times) - 1
    lams = schedule.logsnr(times)
    batch = noise.shape[0]
    z = noise
    for i in range(steps):
        t = torch.full((batch,), float(times[i]), device=noise.device)
        v = velocity(z, t)
        last = i == steps - 1
        fresh = fresh_noise() if eta and not last else None
        z = ddim_step(z, v, lams[i], None if last else lams[i + 1], eta, fresh)
        if on_step:
            on_step(i)
    return z


def guided(v_cond: Tensor, v_uncond: Tensor, scale: float) -> Tensor:
    """Classifier-free guidance: ``v_uncond + scale * (v_cond - v_uncond)`` (scale 1 = v_cond)."""
    return v_uncond + scale * (v_cond - v_uncond)


def guided_velocity(cond: Velocity, uncond: Velocity | None, scale: float) -> Velocity:
    """The v-prediction with CFG on the context; with ``scale == 1`` the unconditional branch is
    never evaluated."""
    if scale == 1.0:
        return cond

    def velocity(z: Tensor, t: Tensor) -> Tensor:
        return guided(cond(z, t), uncond(z, t), scale)

    return velocity
