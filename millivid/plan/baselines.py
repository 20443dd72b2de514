"""Full-resolution autoregressive rollout and the rollout + upscaling ablation (paper §3.2, A.2).

Full resolution: K level-0 context frames and K level-0 target frames (paper: 7 + 7, S = 3,584).

Rollout + upscaling (the "obvious" strategy of §3.2's inset, Fig. 11): roll out the whole video
at the coarsest level first, then each finer level l in T_l = B / N_l frame chunks, conditioned
on its own recent past and on the next-coarser version of its target frames only. Its own past
fills the context budget left after the coarse version: P_l = floor((sum_m C_m N_m - T_l N_{l+1})
/ N_l) frames, and the remainder is a fixed padding (reported as missing tokens) so every step
has the same sequence length.

End of the rollout: as for every method, the last chunk is generated past ``end`` and dropped.
"""

from __future__ import annotations

from millivid.plan.budget import BudgetError, check_tokens, context_capacity, target_frames
from millivid.plan.config import PlanConfig
from millivid.plan.step import Span, Step, raw_step


def fullres_frames(budget: PlanConfig) -> int:
    """K, the context and the target frame count of the full-resolution baseline."""
    check_tokens(budget)
    if budget.fullres_context <= 0:
        raise BudgetError(
            f"plan.fullres_context = {budget.fullres_context}: the full-resolution baseline "
            "needs K >= 1 context (and target) frames"
        )
    return budget.fullres_context


def fullres_plan(budget: PlanConfig, start: int, end: int) -> list[Step]:
    """Full-resolution steps: [a - K, a) level-0 context, [a, a + K) level-0 target."""
    k = fullres_frames(budget)
    return [
        raw_step(Span(0, a, a + k), [Span(0, a - k, a)], budget.tokens)
        for a in range(start, end, k)
    ]


def upscale_past(budget: PlanConfig, level: int) -> tuple[int, int]:
    """(P_l own-past frames, padding tokens) of an upscaling step at ``level``."""
    frames = target_frames(budget)
    capacity = context_capacity(budget)
    coarse = frames[level] * budget.tokens[level + 1] if level + 1 < len(frames) else 0
    if coarse > capacity:
        raise BudgetError(
            f"upscale at level {level}: the next-coarser version of the target needs {coarse} "
            f"tokens but the context budget (sum of plan.context x plan.tokens) is {capacity}"
        )
    past = (capacity - coarse) // budget.tokens[level]
    return past, capacity - coarse - past * budget.tokens[level]


def upscale_plan(budget: PlanConfig, start: int, end: int) -> list[Step]:
    """Rollout + upscaling: every coarsest chunk first, then each finer level in turn."""
    frames = target_frames(budget)
    steps = []
    for level in reversed(range(len(frames))):
        past, padding = upscale_past(budget, level)
        for a in range(start, end, frames[level]):
            context = [Span(level, a - past, a)]
            if level + 1 < len(frames):
                context.append(Span(level + 1, a, a + frames[level]))
            target = Span(level, a, a + frames[level])
            steps.append(raw_step(target, context, budget.tokens, padding=padding))
    return steps


def fullres_period(budget: PlanConfig) -> int:
    """Frames per full-resolution step."""
    return fullres_frames(budget)


def upscale_period(budget: PlanConfig) -> int:
    """One coarsest chunk contains every step kind of the upscaling rollout."""
    return target_frames(budget)[-1]
