"""Noise schedule (shifted cosine, log-SNR), v-prediction conversions, DDIM sampler, CFG."""

from millivid.diffusion.config import DiffusionConfig
from millivid.diffusion.ddim import ddim_sample, ddim_step, ddim_times, guided, guided_velocity
from millivid.diffusion.schedule import (
    COSINE,
    LOGSNR_MAX,
    LOGSNR_MIN,
    Schedule,
    alpha_sigma,
    diffuse,
    eps_from_v,
    logsnr,
    sample_time,
    v_from_x0,
    v_from_x0_eps,
    x0_from_v,
)

__all__ = [
    "COSINE",
    "LOGSNR_MAX",
    "LOGSNR_MIN",
    "DiffusionConfig",
    "Schedule",
    "alpha_sigma",
    "guided_velocity",
    "ddim_sample",
    "ddim_step",
    "ddim_times",
    "diffuse",
    "eps_from_v",
    "guided",
    "logsnr",
    "sample_time",
    "v_from_x0",
    "v_from_x0_eps",
    "x0_from_v",
]
