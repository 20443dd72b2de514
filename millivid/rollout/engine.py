"""The rollout engine: walk a method's plan, filling a latent store step by step (DESIGN.md).

The engine knows plans and the store; it does not know the model. A ``Denoiser`` turns one
step's clean context latents (+ actions, + the step's starting noise) into the step's target
latents; ``millivid.rollout.dit_denoiser`` builds one from a DiT, the DDIM sampler and CFG. Noise
is drawn per step from ``(seed, step index)`` (``millivid.seeds.rollout_step_seed``), so an
interrupted rollout resumed from its saved store gives the same result as an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from millivid.model.memory import select_memory
from millivid.plan.sources import ContextSource
from millivid.plan.step import Span, Step
from millivid.rollout.store import LatentStore
from millivid.seeds import rollout_step_seed


class Denoiser(Protocol):
    def __call__(
        self,
        step: Step,
        context: list[torch.Tensor],
        actions: torch.Tensor,
        noise: torch.Tensor,
        memory: tuple[torch.Tensor, torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """context: per ``step.context`` span ``[B, frames, h, w, C]`` (cut at frame 0);
        actions: int64 [B, T]; noise: ``[B, frames, h, w, C]`` of the target span; memory: for a
        step with ``memory``, (latents [B, M, h, w, C], frames int64 [B, M]); generator: the
        step's random stream after ``noise`` (``step_generator``), for a stochastic sampler.
        Returns the target latents, same shape as ``noise``."""
        ...


@dataclass
class Progress:
    """What the engine reports after each step (for progress bars and logs)."""

    step: int  # steps done
    total: int
    frames_per_level: list[int]  # frames generated so far per level
    seconds: float


def context_span(span: Span, source: ContextSource | str) -> Span:
    """Where a context span's latents live in the store: its own level, or level 0 for
    FramePack's patchified context."""
    return Span(ContextSource(source).stored_level(span.level), span.start, span.stop)


def host_randn(
    shape: Sequence[int], generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Standard normal noise drawn on the CPU (the same numbers on every device) and moved to
    ``device``; to a GPU through page-locked memory, so the copy does not wait for the GPU."""
    noise = torch.randn(*shape, generator=generator)
    if torch.device(device).type == "cuda":
        return noise.pin_memory().to(device, non_blocking=True)
    return noise.to(device)


def step_generator(seed: int, index: int) -> torch.Generator:
    """The random stream of rollout step ``index``: a function of (seed, index) only. The step's
    target noise is its first draw; a stochastic sampler draws on from it."""
    return torch.Generator().manual_seed(rollout_step_seed(seed, index))


def run_plan(
    plan: Sequence[Step],
    store: LatentStore,
    denoiser: Denoiser,
    actions: torch.Tensor,
    *,
    seed: int = 0,
    first_step: int = 0,
    source: ContextSource | str = ContextSource.LEVELS,
    on_step: Callable[[Progress], None] | None = None,
    after_step: Callable[[int], None] | None = None,
    poses: torch.Tensor | None = None,
    derive: Callable[[Span], None] | None = None,
) -> None:
    """Run steps ``first_step..`` of ``plan``, writing every target span back into ``store``.

    ``derive(span)`` runs once a target span is written, before ``after_step`` (hierarchical
    FramePack re-encodes the coarse levels of the level-0 frames it generated there).
    ``after_step(i)`` runs once step ``i`` is written (the CLI saves the store there, so that a
    re-run resumes at ``i + 1``). ``source="patchify"`` (FramePack) reads every context span from
    level 0, which the packer patchifies to the span's compression level. Steps with memory
    frames retrieve them by ``poses`` (float [B, T, 5], required then).
    """
    levels = len(store.levels)
    generated = [0] * levels
    for step in plan[:first_step]:
        generated[step.target.level] += step.target.frames
    start = time.perf_counter()
    for index in range(first_step, len(plan)):
        step = plan[index]
        context = [store.read(context_span(span, source)) for span in step.context]
        target = store.levels[step.target.level]
        shape = (target.shape[0], step.target.frames, *target.shape[2:])
        generator = step_generator(seed, index)
        noise = host_randn(shape, generator, target.device)
        memory = None
        if step.memory is not None:
            if poses is None:
                raise ValueError("this plan's steps retrieve memory frames: give the poses")
            frames = select_memory(poses, step)
            level = ContextSource(source).stored_level(step.memory.level)
            memory = (store.gather(level, frames), frames)
        latents = denoiser(step, context, actions, noise, memory=memory, generator=generator)
        store.write(step.target, latents)
        if derive:
            derive(step.target)
        generated[step.target.level] += step.target.frames
        if after_step:
            after_step(index)
        if on_step:
            on_step(Progress(index + 1, len(plan), list(generated), time.perf_counter() - start))


# Latents of a calibrated autoencoder have about unit variance (|value| < 10 on real frames); a
# sampled latent beyond this has blown up (decoded, it is noise or a black frame), also when finite
LATENT_LIMIT = 1e3


def first_diverged_step(plan: Sequence[Step], store: LatentStore) -> int | None:
    """Index of the first step of ``plan`` whose target latents in ``store`` hold NaN, inf or a
    value beyond ``LATENT_LIMIT`` (where a broken model or guidance first showed); None when
    every target is within bounds."""
    for index, step in enumerate(plan):
        t = step.target
        values = store.levels[t.level][:, t.start : t.stop]
        if not bool((values.abs() <= LATENT_LIMIT).all()):  # NaN compares False
            return index
    return None
