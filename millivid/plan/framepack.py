"""FramePack and its ablations (paper §4 and §5 Q3, Fig. 11, A.2), in the plan language.

FramePack: C_l context frames per compression level stacked into the past from the target start
(level 0 the most recent C_0 frames, then C_1 frames before those, ...), compression level l made
by patchifying level-0 latents with a 2^l x 2^l kernel, so a level-l frame costs N_l tokens; the
target is B / N_0 level-0 frames. ``hierarchical-framepack`` is the same plan reading the
hierarchical latent levels (re-encoded from generated level-0 frames) instead of patchifying.

Mirrored FramePack: half the sequence is context, half target, and the targets mirror the context
layout: level 0 [a, a + c_0) (kept), then c_1 level-1 frames after those, and so on (trained on,
discarded at sampling). At sampling it behaves like FramePack with about half the context.

End of the rollout: as for every method, the last chunk is generated past ``end`` and dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from millivid.plan.budget import check_context, mirrored_frames, target_frames
from millivid.plan.config import PlanConfig
from millivid.plan.step import Span, Step, raw_step


def stacked_past(a: int, context: Sequence[int]) -> list[Span]:
    """Level l holds the C_l frames before those of level l-1, ending at frame ``a``."""
    spans = []
    stop = a
    for level, c in enumerate(context):
        spans.append(Span(level, stop - c, stop))
        stop -= c
    return spans


def framepack_plan(budget: PlanConfig, start: int, end: int) -> list[Step]:
    """FramePack steps from ``start`` to ``end``: B / N_0 level-0 frames each (3 in the paper)."""
    check_context(budget)
    (chunk,) = target_frames(budget, 1)
    return [
        raw_step(Span(0, a, a + chunk), stacked_past(a, budget.context), budget.tokens)
        for a in range(start, end, chunk)
    ]


def mirrored_framepack_plan(budget: PlanConfig, start: int, end: int) -> list[Step]:
    """Mirrored FramePack steps: c_0 kept level-0 frames each plus discarded coarse targets."""
    frames = mirrored_frames(budget)
    steps = []
    for a in range(start, end, frames[0]):
        discarded = []
        first = a + frames[0]
        for level in range(1, len(frames)):
            if frames[level]:
                discarded.append(Span(level, first, first + frames[level]))
            first += frames[level]
        target = Span(0, a, a + frames[0])
        steps.append(raw_step(target, stacked_past(a, frames), budget.tokens, discarded))
    return steps


def framepack_period(budget: PlanConfig) -> int:
    """Frames per step (every step is the same kind)."""
    return target_frames(budget, 1)[0]


def mirrored_period(budget: PlanConfig) -> int:
    """Kept frames per mirrored step."""
    return mirrored_frames(budget)[0]
