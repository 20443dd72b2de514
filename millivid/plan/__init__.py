"""Rollout plans for every method (pure Python, no torch).

``make_plan(method, budget, start, end)`` lists the steps of a rollout; each ``Step`` says which
(level, frame range) spans are clean context and which are noisy targets. Training draws its
steps with ``sample_training_step``: exactly the steps rollouts take. See docs/PLANS.md.
"""

from millivid.plan.budget import BudgetError, context_capacity, stacked_lookback, target_frames
from millivid.plan.check import PlanError, check_plan
from millivid.plan.config import PlanConfig
from millivid.plan.methods import (
    METHODS,
    Method,
    context_source,
    generated_levels,
    make_plan,
    max_lookback,
)
from millivid.plan.sources import ContextSource
from millivid.plan.step import Span, Step
from millivid.plan.training_steps import (
    MIN_START,
    count_training_steps,
    sample_training_step,
    step_kinds,
    training_steps,
)

__all__ = [
    "METHODS",
    "MIN_START",
    "BudgetError",
    "ContextSource",
    "Method",
    "PlanConfig",
    "PlanError",
    "Span",
    "Step",
    "check_plan",
    "context_capacity",
    "context_source",
    "count_training_steps",
    "generated_levels",
    "make_plan",
    "max_lookback",
    "sample_training_step",
    "stacked_lookback",
    "step_kinds",
    "target_frames",
    "training_steps",
]
