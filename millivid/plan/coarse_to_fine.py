"""MILLIVID's coarse-to-fine rollout (paper §3.2, Fig. 2 and Fig. 10; DESIGN.md).

State: the frontier f_l = number of frames known at level l (frames before the start are ground
truth, known at every level); invariant f_0 <= f_1 <= ... <= f_{L-1}. Each step generates
T_l = B / N_l frames at the finest level l with f_l + T_l <= f_{l+1}, else at the coarsest level.
From a state where every level is at frame a this runs like an odometer: T_{L-1} coarse frames,
then T_{L-2} frames one level finer, ..., then level-0 chunks until level 0 catches up, and so on.

End of the rollout: a level stops once its frontier reaches ``end``. Its last chunk is never
shortened; it is generated past ``end`` and the extra frames are dropped (the rollout engine
pads the actions past the end). So every step keeps the exact token counts of the steps the
model was trained on, and every frame of [start, end) is still a target exactly once per level.

``recent=True`` (method ``millivid-recent``, not in the paper): a step's own level holds the most
recent frames [a - C_l*, a) and the finer levels stack behind it. Same steps, same token counts;
only which past frames each level shows changes. A coarse step then sees the coarse latents of
the frames just before its target instead of only their finest latents (the paper's rule shows
its own level no newer than sum_{l<l*} C_l frames back: 63 frames for the coarsest level).
"""

from __future__ import annotations

from collections.abc import Sequence

from millivid.plan.budget import check_context, target_frames
from millivid.plan.config import PlanConfig
from millivid.plan.step import Span, Step, raw_step


def next_level(frontiers: Sequence[int], frames: Sequence[int], end: int) -> int | None:
    """Level of the next step: the finest unfinished level l with f_l + T_l <= f_{l+1}, the
    coarsest unfinished level otherwise; None when every level has reached ``end``."""
    last = len(frontiers) - 1
    for level, f in enumerate(frontiers):
        if f < end and (level == last or f + frames[level] <= frontiers[level + 1]):
            return level
    return None


def coarse_to_fine_context(
    frontiers: Sequence[int], level: int, context: Sequence[int], recent: bool = False
) -> list[Span]:
    """Context spans of a step at ``level`` from state ``frontiers``, finest level first.

    Levels <= ``level`` stack into the past from the target start a = f_level, finest first
    (level 0 holds [a - C_0, a), level 1 the C_1 frames before those, ...); with ``recent`` the
    step's own level comes first ([a - C_level, a)), then level 0, 1, ... behind it. Coarser
    levels hold their C_l most recent known frames [f_l - C_l, f_l): the coarse version of the
    target frames and of the already generated coarse future, which rules out the "stop/go"
    inconsistency.
    """
    stacked = {}
    stop = frontiers[level]
    for finer in (level, *range(level)) if recent else range(level + 1):
        stacked[finer] = Span(finer, stop - context[finer], stop)
        stop -= context[finer]
    spans = [stacked[finer] for finer in range(level + 1)]
    for coarser in range(level + 1, len(frontiers)):
        f = frontiers[coarser]
        spans.append(Span(coarser, f - context[coarser], f))
    return spans


def coarse_to_fine_plan(
    budget: PlanConfig, start: int, end: int, recent: bool = False
) -> list[Step]:
    """Steps of the coarse-to-fine rollout from ``start`` known frames to ``end``, before cutting
    context at frame 0 (spans may start below 0); ``recent``: see the module docstring."""
    check_context(budget)
    frames = target_frames(budget)
    frontiers = [start] * len(frames)
    steps = []
    while (level := next_level(frontiers, frames, end)) is not None:
        a = frontiers[level]
        context = coarse_to_fine_context(frontiers, level, budget.context, recent)
        steps.append(raw_step(Span(level, a, a + frames[level]), context, budget.tokens))
        frontiers[level] += frames[level]
    return steps


def recent_first_plan(budget: PlanConfig, start: int, end: int) -> list[Step]:
    """``coarse_to_fine_plan`` with each step's own level holding its most recent frames."""
    return coarse_to_fine_plan(budget, start, end, recent=True)


def coarse_to_fine_period(budget: PlanConfig) -> int:
    """Frames after which the step pattern repeats: one coarsest chunk, T_{L-1}."""
    return target_frames(budget)[-1]
