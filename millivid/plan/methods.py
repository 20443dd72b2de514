"""Every rollout method by name, over the one ``Step`` type: ``make_plan`` and what the rollout
engine and the packer need to know about a method (its context source and generated levels)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from millivid.plan.baselines import fullres_period, fullres_plan, upscale_period, upscale_plan
from millivid.plan.budget import BudgetError, check_memory, memory_at
from millivid.plan.coarse_to_fine import (
    coarse_to_fine_period,
    coarse_to_fine_plan,
    recent_first_plan,
)
from millivid.plan.config import PlanConfig
from millivid.plan.framepack import (
    framepack_period,
    framepack_plan,
    mirrored_framepack_plan,
    mirrored_period,
)
from millivid.plan.sources import ContextSource
from millivid.plan.step import Step, place, with_memory

# Frames one plan may generate: ~130k steps and a few seconds at most (the paper rolls out 768);
# the steps are built in memory, so a mistyped --end would otherwise run for hours.
MAX_PLAN_FRAMES = 100_000


@dataclass(frozen=True)
class Method:
    """A rollout method: how it plans, where its context tokens come from, what its budget counts
    and which autoencoder's levels it reads. Callers ask it rather than compare its name.

    ``raw_plan(budget, start, end)`` gives the steps before cutting at frame 0;
    ``period(budget)`` is a frame count such that ``raw_plan(budget, 0, period)`` holds every kind
    of step the method ever takes; ``hierarchical`` says whether the method generates every
    latent level (True) or only level 0 (False: other context levels derive from level 0);
    ``reencode``: a rollout re-encodes the coarse levels of every generated level-0 frame (its
    context reads hierarchical levels of frames it generates only at level 0);
    ``frame_budget``: a step reads ``plan.fullres_context`` = K level-0 context frames and
    generates K level-0 frames, instead of ``plan.context`` frames per level and
    ``plan.target_tokens``; ``ae``: the autoencoder kind (``ae.kind``) whose latent levels it is
    trained and rolled out over (``cascaded``: one learned level, the coarser ones mean-pooled).
    """

    name: str
    summary: str
    source: ContextSource
    hierarchical: bool
    raw_plan: Callable[[PlanConfig, int, int], list[Step]]
    period: Callable[[PlanConfig], int]
    reencode: bool = False
    frame_budget: bool = False
    ae: str = "hierarchical"

    def context_frames(self, budget: PlanConfig) -> tuple[int, ...]:
        """Context frames per level its budget sets, finest first: (K,) with a frame budget."""
        return (budget.fullres_context,) if self.frame_budget else budget.context

    def target_tokens(self, budget: PlanConfig) -> int:
        """Target tokens its budget sets, B: K N_0 with a frame budget."""
        return (
            budget.fullres_context * budget.tokens[0] if self.frame_budget else budget.target_tokens
        )

    def generated_levels(self, budget: PlanConfig) -> tuple[int, ...]:
        """Levels the rollout writes back: all of them for hierarchical methods, else level 0."""
        return tuple(range(len(budget.tokens))) if self.hierarchical else (0,)

    def drawn_levels(self, budget: PlanConfig) -> int:
        """How many levels its spans use (rows of a plan picture): 1 with a frame budget."""
        return 1 if self.frame_budget else len(budget.tokens)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "millivid",
            "coarse-to-fine rollout over learned hierarchical levels (paper Fig. 10)",
            ContextSource.LEVELS,
            True,
            coarse_to_fine_plan,
            coarse_to_fine_period,
        ),
        Method(
            "millivid-recent",
            "coarse-to-fine rollout; each step's own level holds the most recent frames",
            ContextSource.LEVELS,
            True,
            recent_first_plan,
            coarse_to_fine_period,
        ),
        Method(
            "framepack",
            "past stacked at 2^l-patchified compression levels, B/N_0 level-0 targets",
            ContextSource.PATCHIFY,
            False,
            framepack_plan,
            framepack_period,
        ),
        Method(
            "fullres",
            "K level-0 context frames, K level-0 target frames",
            ContextSource.LEVELS,
            False,
            fullres_plan,
            fullres_period,
            frame_budget=True,
        ),
        Method(
            "upscale",
            "roll out the coarsest level, then upscale level by level (ablation)",
            ContextSource.LEVELS,
            True,
            upscale_plan,
            upscale_period,
        ),
        Method(
            "mirrored-framepack",
            "FramePack with coarse future targets mirroring the context, discarded at sampling",
            ContextSource.PATCHIFY,
            False,
            mirrored_framepack_plan,
            mirrored_period,
        ),
        Method(
            "hierarchical-framepack",
            "FramePack reading hierarchical latent levels instead of patchifying",
            ContextSource.LEVELS,
            False,
            framepack_plan,
            framepack_period,
            reencode=True,
        ),
        Method(
            "cascaded",
            "MILLIVID's plan on mean-pooled level-0 latents (ablation)",
            ContextSource.LEVELS,
            True,
            coarse_to_fine_plan,
            coarse_to_fine_period,
            ae="cascaded",
        ),
    )
}


def get_method(method: str) -> Method:
    """The method called ``method``; the error lists the known names."""
    try:
        return METHODS[method]
    except KeyError:
        raise BudgetError(f"unknown plan method {method!r} (known: {', '.join(METHODS)})") from None


def context_source(method: str) -> ContextSource:
    """Where the method's context tokens come from: ``"patchify"`` (level-0 latents patchified
    with a 2^l kernel: framepack, mirrored-framepack) or ``"levels"`` (the latent cache's levels;
    for ``cascaded`` those are the mean-pooled levels of the cascaded autoencoder)."""
    return get_method(method).source


def generated_levels(method: str, budget: PlanConfig) -> tuple[int, ...]:
    """Levels the rollout writes back: all of them for hierarchical methods, else level 0 only."""
    return get_method(method).generated_levels(budget)


def raw_steps(method: str, budget: PlanConfig, start: int, end: int) -> list[Step]:
    """``method``'s steps from ``start`` to ``end`` before cutting at frame 0, each with the
    budget's retrieved memory frames (``plan.memory_frames``)."""
    check_memory(budget)
    steps = [
        with_memory(raw, *memory_at(budget, raw.target.level), budget.tokens, budget.memory_pool)
        for raw in get_method(method).raw_plan(budget, start, end)
    ]
    check_memory_known(method, budget, steps, start)
    return steps


def check_memory_known(method: str, budget: PlanConfig, steps: list[Step], start: int) -> None:
    """Every step's memory pool must be known at the memory level when the step runs (frames
    before ``start`` are known at every level; a step makes its target frames known at its
    level, or at every level for methods that derive the other levels from level 0). A plan
    whose coarse steps run ahead of the memory level (``upscale`` with level-0 memory) would
    fail only in the rollout, after training: refuse it here."""
    levels = len(budget.tokens)
    every_level = not get_method(method).hierarchical
    known = [start] * levels
    own = ",".join(map(str, range(levels)))
    for step in steps:
        memory, target = step.memory, step.target
        if memory is not None:
            need = target.start if memory.pool == "unheld" else max(step.first_frame, 0)
            if known[memory.level] < need:
                raise BudgetError(
                    f"{method} with plan.memory_frames: its step generating frames "
                    f"{target.start}-{target.stop - 1} at level {target.level} picks memory "
                    f"frames at level {memory.level} from the frames before {need}, but level "
                    f"{memory.level} is known only up to frame {known[memory.level] - 1} then "
                    "(its coarse steps run ahead of the finer levels): take each step's memory "
                    f"at its own level (--set plan.memory_levels={own}) or none"
                )
        for level in range(levels) if every_level else (target.level,):
            known[level] = max(known[level], target.stop)


def max_lookback(method: str, budget: PlanConfig) -> int:
    """Frames before the target start a step's planned spans may read (memory frames reach
    further); with at least this many known frames before ``start`` no context is cut at
    frame 0."""
    kinds = get_method(method).raw_plan(budget, 0, get_method(method).period(budget))
    return max(s.target.start - s.first_frame for s in kinds)


def make_plan(method: str, budget: PlanConfig, start: int, end: int) -> list[Step]:
    """The rollout plan of ``method`` from ``start`` known frames to frame ``end``.

    Frames < ``start`` are ground truth, known at every level. Every frame of [start, end) is a
    target exactly once at every generated level; a level's last chunk runs past ``end`` when
    ``end - start`` is not a multiple of its chunk, and the frames past ``end`` are dropped.
    Context before frame 0 is cut and counted in ``Step.missing_tokens``.
    """
    if not 0 <= start < end:
        raise BudgetError(f"plan start={start}, end={end}: need 0 <= start < end")
    if end - start > MAX_PLAN_FRAMES:
        raise BudgetError(
            f"plan start={start}, end={end}: {end - start:,} frames to generate, more than the "
            f"{MAX_PLAN_FRAMES:,} one plan may hold (its steps are built in memory): generate "
            "fewer frames (plan --end, generate --frames)"
        )
    return [place(raw, 0, budget.tokens) for raw in raw_steps(method, budget, start, end)]
