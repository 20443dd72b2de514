"""The sampler: one plan step's targets from the DiT by DDIM + CFG, with context K/V reuse.

The rollout's denoiser (``millivid.rollout.dit_denoiser``) packs a step with noise as targets
(``pack_spans``), calls ``sample_targets`` and unpacks the result (``unpack_targets``) for the
engine to write back to its latent store.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from millivid.diffusion import COSINE, Schedule, ddim_sample, guided_velocity
from millivid.model.dit import VideoDiT
from millivid.model.tokens import Tokens


def compile_for_sampling(model: VideoDiT) -> VideoDiT:
    """Wrap the model's sampling entry points (``forward``, ``encode_context``,
    ``forward_targets``) with ``torch.compile``, in place and once per model: later calls are
    no-ops, so every rollout step and batch reuses the compiled code. Returns ``model``."""
    if not getattr(model, "compiled_for_sampling", False):
        for name in ("forward", "encode_context", "forward_targets"):
            setattr(model, name, torch.compile(getattr(model, name)))
        model.compiled_for_sampling = True
    return model


@torch.no_grad()
def sample_targets(
    model: VideoDiT,
    tokens: Tokens,
    times: Tensor,
    schedule: Schedule = COSINE,
    guidance: float = 1.0,
    reuse_context: bool | None = None,
    bf16: bool | None = None,
    eta: float = 0.0,
    fresh_noise: Callable[[], Tensor] | None = None,
) -> Tensor:
    """Target latents [B, St, Cin] of ``tokens`` (whose target values are the starting noise).

    ``times``: the DDIM time grid, float64 [steps + 1] from 1 to 0 (``ddim_times(steps)``).
    ``reuse_context`` (default: whenever the model is context-causal) computes the context K/V
    once and runs only the targets per DDIM step; otherwise every step recomputes the whole
    sequence. ``guidance`` != 1 adds the unconditional branch: every context token dropped
    (null tokens, as in training), with its own context cache when reusing. ``bf16`` (default:
    on CUDA) runs the model under bf16 autocast, as in training; the DDIM updates stay fp32.
    ``eta`` > 0: stochastic DDIM steps, drawing standard normal noise shaped like the targets
    from ``fresh_noise()`` (``ddim_sample``).
    """
    if reuse_context is None:
        reuse_context = model.cfg.attention == "context-causal"
    device = tokens.values.device.type
    if bf16 is None:
        bf16 = device == "cuda"

    def autocast():
        return torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)

    def v_prediction(packed: Tokens):
        with autocast():
            cache = model.encode_context(packed) if reuse_context else None

        def v(z: Tensor, t: Tensor) -> Tensor:
            x = packed.with_targets(z)
            with autocast():
                out = model.forward_targets(x, t, cache) if reuse_context else model(x, t)
            return out.float()

        return v

    cond = v_prediction(tokens)
    uncond = None
    if guidance != 1.0:
        drop_all = torch.ones(tokens.batch, dtype=torch.bool, device=tokens.valid.device)
        uncond = v_prediction(tokens.drop_context(drop_all))
    noise = tokens.target_values
    velocity = guided_velocity(cond, uncond, guidance)
    out = ddim_sample(velocity, noise, times, schedule, eta=eta, fresh_noise=fresh_noise)
    return out * tokens.channel_mask()[:, tokens.context_slots :]
