"""Training steps: exactly the steps rollouts take, drawn at random positions.

Every method's rollout is made of a few step *kinds* (a step's spans relative to its target
start) repeating with a period: a rollout from any start A takes, in each period, the kinds of a
rollout from 0 moved to A + k * period. So the steps that occur in some rollout starting at
``A >= MIN_START`` (at least one ground-truth frame) of a video of ``video_length`` frames are
exactly: each kind placed at every target start ``a`` from its first possible start up to where
its last span still ends inside the video, with context cut at frame 0 (``missing_tokens``).
``sample_training_step`` draws uniformly over these distinct steps, so kinds appear as often as
in rollouts, steps near the start of a video (cut context) are included, and all context is
ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from millivid.plan.budget import BudgetError
from millivid.plan.config import PlanConfig
from millivid.plan.methods import get_method, raw_steps
from millivid.plan.step import Step, place

MIN_START = 1  # training rollouts start with at least one ground-truth frame


@dataclass(frozen=True)
class StepKind:
    """A step relative to its target start (target starts at frame 0, context may be negative),
    the first absolute target start at which a rollout takes it, and its reach after the start."""

    step: Step
    first_start: int
    reach: int

    def positions(self, video_length: int) -> range:
        """Target starts at which this kind fits in a video of ``video_length`` frames."""
        return range(self.first_start, video_length - self.reach + 1)


@lru_cache(maxsize=64)
def step_kinds(method: str, budget: PlanConfig) -> tuple[StepKind, ...]:
    """The distinct kinds of step ``method`` takes with ``budget``, in rollout order."""
    spec = get_method(method)
    first: dict[Step, int] = {}
    for raw in raw_steps(method, budget, 0, spec.period(budget)):
        a = raw.target.start
        kind = raw.shifted(-a)  # not place(): context stays uncut, placing cuts it later
        first[kind] = min(first.get(kind, MIN_START + a), MIN_START + a)
    return tuple(StepKind(k, first[k], k.last_frame) for k in first)


def training_steps(method: str, budget: PlanConfig, video_length: int) -> Iterator[Step]:
    """Every distinct step ``sample_training_step`` can draw (for tests and small budgets)."""
    for kind in step_kinds(method, budget):
        for a in kind.positions(video_length):
            yield place(kind.step, a, budget.tokens)


def count_training_steps(method: str, budget: PlanConfig, video_length: int) -> int:
    """How many distinct training steps a video of ``video_length`` frames holds."""
    return sum(len(k.positions(video_length)) for k in step_kinds(method, budget))


def sample_training_step(
    method: str, budget: PlanConfig, video_length: int, rng: random.Random
) -> Step:
    """A uniformly random step (kind and position) that some rollout of ``method`` takes inside
    a video of ``video_length`` frames, with every frame before it ground truth. With
    ``budget.level_weights`` the target level is drawn first with those weights, then a step
    uniformly among that level's."""
    kinds = step_kinds(method, budget)
    total = count_training_steps(method, budget, video_length)
    if total == 0:
        need = min(k.first_start + k.reach for k in kinds)
        raise BudgetError(
            f"{method}: a video of {video_length} frames holds no training step; "
            f"the shortest step needs {need} frames"
        )
    if budget.level_weights:
        kinds = _kinds_of_drawn_level(kinds, budget, video_length, rng)
        total = sum(len(k.positions(video_length)) for k in kinds)
    index = rng.randrange(total)
    for kind in kinds:
        positions = kind.positions(video_length)
        if index < len(positions):
            return place(kind.step, positions[index], budget.tokens)
        index -= len(positions)
    raise AssertionError("unreachable: index within total")


def _kinds_of_drawn_level(
    kinds: tuple[StepKind, ...], budget: PlanConfig, video_length: int, rng: random.Random
) -> list[StepKind]:
    """The kinds whose target is at a level drawn with ``budget.level_weights`` (among the
    levels that have a step in this video)."""
    weights = budget.level_weights
    if len(weights) != len(budget.tokens) or min(weights) < 0:
        raise ValueError(
            f"plan.level_weights: {len(budget.tokens)} weights >= 0 expected (one per level), "
            f"got {weights}"
        )
    present = sorted({k.step.target.level for k in kinds if len(k.positions(video_length))})
    if not any(weights[lvl] > 0 for lvl in present):
        raise ValueError(
            f"plan.level_weights {weights} give no weight to the target levels {present}"
        )
    level = rng.choices(present, [weights[lvl] for lvl in present])[0]
    return [k for k in kinds if k.step.target.level == level]
