"""The engine's ``Denoiser`` for a video DiT: pack the step, run the DDIM sampler (+CFG, + context
K/V reuse), unpack the target latents (a rollout is plan + denoiser + latent store)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from millivid.diffusion import ddim_times
from millivid.diffusion.config import DiffusionConfig
from millivid.model.ddim_sampler import compile_for_sampling, sample_targets
from millivid.model.dit import VideoDiT
from millivid.model.packing import pack_spans, unpack_targets
from millivid.model.tokens import Tokens, noise_context
from millivid.plan.sources import ContextSource
from millivid.plan.step import Step
from millivid.rollout.engine import host_randn
from millivid.seeds import context_noise_seed, discarded_noise_seed


class DiTDenoiser:
    """Callable ``(step, context, actions, noise) -> target latents`` for ``run_plan``.

    ``compile`` (default: when the model is on CUDA) runs the model under ``torch.compile``,
    compiled once per model (``compile_for_sampling`` wraps the model itself, in place).
    ``poses``: camera poses float [B, T, 5] of the batch for pose-conditioned models, or None.
    ``bf16`` (default: when the model is on CUDA) runs the model under bf16 autocast; on a CPU
    with bf16 units (AVX512-BF16, AMX) that is faster too (docs/PERFORMANCE.md).
    """

    def __init__(
        self,
        model: VideoDiT,
        source: ContextSource | str,
        shapes: list[tuple[int, int]],
        diffusion: DiffusionConfig,
        reuse_context: bool | None = None,
        compile: bool | None = None,
        poses: Tensor | None = None,
        bf16: bool | None = None,
    ) -> None:
        if compile is None:
            compile = next(model.parameters()).is_cuda
        if compile:
            compile_for_sampling(model)
        self.model, self.source, self.shapes = model, ContextSource(source), shapes
        self.diffusion, self.reuse_context = diffusion, reuse_context
        self.poses, self.bf16 = poses, bf16

    @torch.no_grad()
    def __call__(
        self,
        step: Step,
        context: list[Tensor],
        actions: Tensor,
        noise: Tensor,
        memory: tuple[Tensor, Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        extra = _discarded_noise(step, noise, self.shapes, self.source)
        tokens = pack_spans(
            step,
            context,
            [noise, *extra],
            actions,
            self.source,
            len(self.shapes),
            poses=self.poses,
            memory=memory,
        )
        if self.diffusion.sample_context_noise:  # conditioning augmentation, as in training
            tokens = _augment_context(tokens, step, self.diffusion, noise.device)
        eta, fresh = self.diffusion.sample_eta, None
        if eta:  # stochastic DDIM: fresh noise from the step's own stream (seed, step index)
            if generator is None:
                raise ValueError(f"diffusion.sample_eta = {eta}: the step needs its generator")
            fresh = target_noise(tokens, generator)
        values = sample_targets(
            self.model,
            tokens,
            ddim_times(self.diffusion.sample_steps),
            self.diffusion.target_schedule(step.target.level),
            self.diffusion.guidance,
            self.reuse_context,
            self.bf16,
            eta=eta,
            fresh_noise=fresh,
        )
        return unpack_targets(values, step, self.source, self.shapes, noise.shape[-1])[0]


def target_noise(tokens: Tokens, generator: torch.Generator) -> Callable[[], Tensor]:
    """Draws of standard normal noise shaped like ``tokens``' target values [B, St, Cin], from
    ``generator``: in the real channels (``channel_mask``, in (batch, token, channel) order),
    zero in the padding. Drawing only those keeps the CPU draw small where patchified tokens
    pad most channels (FramePack's level-0 targets use C of 4^k * C); where every channel is
    real (the hierarchical methods) the numbers are those of one draw of the whole shape."""
    mask = tokens.channel_mask()[:, tokens.context_slots :]
    count = int(mask.sum())

    def draw() -> Tensor:
        values = host_randn((count,), generator, mask.device)
        return torch.zeros(mask.shape, device=mask.device).masked_scatter_(mask, values)

    return draw


def _discarded_noise(
    step: Step, noise: Tensor, shapes: list[tuple[int, int]], source: ContextSource
) -> list[Tensor]:
    """The starting noise of a step's discarded targets (mirrored FramePack), [B, frames, h, w, C]
    each: their own stream, a function of the step only."""
    gen = torch.Generator().manual_seed(discarded_noise_seed(step.target.start, step.target.level))
    return [
        host_randn(
            (noise.shape[0], s.frames, *shapes[source.stored_level(s.level)], noise.shape[-1]),
            gen,
            noise.device,
        )
        for s in step.discarded
    ]


def _augment_context(
    tokens: Tokens, step: Step, diffusion: DiffusionConfig, device: torch.device
) -> Tokens:
    """The context noised to ``diffusion.sample_context_noise`` (conditioning augmentation, as
    in training) with noise from the step's own stream (not the targets' ``noise``)."""
    time = torch.full((tokens.batch,), diffusion.sample_context_noise)
    gen = torch.Generator().manual_seed(context_noise_seed(step.target.start, step.target.level))
    eps = host_randn(tokens.values.shape, gen, device)
    return noise_context(
        tokens, time.to(device), eps, diffusion.schedule, diffusion.context_noise_scope
    )
