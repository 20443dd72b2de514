"""Property tests of every method's plan over random budgets (L = 1..5), checked independently of
``check_plan`` by counting target frames and replaying what is known at each level."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.model.memory import memory_pool
from millivid.plan import (
    METHODS,
    BudgetError,
    PlanConfig,
    check_plan,
    context_capacity,
    generated_levels,
    make_plan,
    max_lookback,
    step_kinds,
)
from millivid.plan.step import place


@st.composite
def budgets(draw, max_levels: int = 5) -> PlanConfig:
    levels = draw(st.integers(1, max_levels))
    tokens = [draw(st.sampled_from([1, 2, 4]))]
    for _ in range(levels - 1):
        tokens.insert(0, tokens[0] * draw(st.sampled_from([1, 2, 4])))
    context = tuple(draw(st.integers(0, 6)) for _ in range(levels))
    target = tokens[0] * draw(st.integers(1, 3))
    return PlanConfig(
        tokens=tuple(tokens),
        context=context,
        target_tokens=target,
        fullres_context=draw(st.integers(1, 8)),
    )


def budget_fits(method: str, b: PlanConfig) -> bool:
    """Whether the method can use this budget at all (else it must say so with BudgetError)."""
    cap = context_capacity(b)
    if method == "upscale":
        return all(
            b.target_tokens // b.tokens[i] * b.tokens[i + 1] <= cap
            for i in range(len(b.tokens) - 1)
        )
    if method == "mirrored-framepack":
        return b.target_tokens <= cap
    return True


def first_unknown(known: set[int], start: int) -> int:
    t = start
    while t in known:
        t += 1
    return t


def assert_valid_rollout(method: str, b: PlanConfig, start: int, end: int, steps) -> None:
    levels = generated_levels(method, b)
    known = {lvl: set(range(start)) for lvl in range(len(b.tokens))}
    counts = {lvl: Counter() for lvl in range(len(b.tokens))}
    for step in steps:
        for span in step.context:  # no pending context: every frame known at its level
            at = span.level if len(levels) > 1 else 0
            assert span.start >= 0 and span.frames > 0
            assert all(t in known[at] for t in range(span.start, span.stop)), (step, span)
        assert step.target.level in levels
        assert step.target.start < end
        counts[step.target.level].update(range(step.target.start, step.target.stop))
        known[step.target.level].update(range(step.target.start, step.target.stop))
        if len(levels) > 1:  # frontiers ordered f_0 <= ... <= f_{L-1}
            frontiers = [first_unknown(known[lvl], start) for lvl in levels]
            assert frontiers == sorted(frontiers)
    for lvl in range(len(b.tokens)):
        if lvl in levels:  # each frame of [start, end) a target exactly once; none twice at all
            assert all(counts[lvl][t] == 1 for t in range(start, end))
            assert max(counts[lvl].values()) == 1
        else:
            assert not counts[lvl]
    assert len({s.sequence_tokens for s in steps}) == 1


@settings(max_examples=1000, deadline=None)
@given(b=budgets(), start=st.integers(0, 40), length=st.integers(1, 60))
def test_every_method_rolls_out_every_frame_once_with_known_context(b, start, length):
    end = start + length
    for method in METHODS:
        if not budget_fits(method, b):
            try:
                make_plan(method, b, start, end)
            except BudgetError:
                continue
            raise AssertionError(f"{method} accepted a budget it cannot use: {b}")
        steps = make_plan(method, b, start, end)
        assert_valid_rollout(method, b, start, end, steps)
        check_plan(method, b, start, end, steps)


@settings(max_examples=300, deadline=None)
@given(b=budgets(), length=st.integers(1, 80))
def test_coarse_to_fine_counts_and_constant_tokens_after_enough_context(b, length):
    start = sum(b.context)  # A >= sum C_l: nothing cut at frame 0
    end = start + length
    frames = [b.target_tokens // n for n in b.tokens]
    for method in ("millivid", "cascaded"):
        steps = make_plan(method, b, start, end)
        assert len(steps) == sum(math.ceil(length / t) for t in frames)
        assert steps[0].target.level == len(b.tokens) - 1
        assert {s.context_tokens for s in steps} == {context_capacity(b)}
        assert {s.target_tokens for s in steps} == {b.target_tokens}
        assert {s.missing_tokens for s in steps} == {0}
        coarse = [s for s in steps if s.target.level == len(b.tokens) - 1]
        for s in coarse:  # the coarse step sees sum C_l frames into the past
            seen = sorted(t for span in s.context for t in range(span.start, span.stop))
            assert seen == list(range(s.target.start - sum(b.context), s.target.start))
    fp = make_plan("framepack", b, start, end)
    assert len(fp) == math.ceil(length / frames[0])
    assert {s.missing_tokens for s in fp} == {0}
    assert max_lookback("millivid", b) == sum(b.context)


@settings(max_examples=200, deadline=None)
@given(b=budgets(), start=st.integers(0, 30), length=st.integers(1, 40))
def test_context_plus_missing_is_fixed_near_the_start(b, start, length):
    for method in METHODS:
        if not budget_fits(method, b):
            continue
        steps = make_plan(method, b, start, start + length)
        far = make_plan(method, b, 10_000, 10_000 + length)
        assert len(steps) == len(far)  # the same kinds, only moved and cut at frame 0
        for near, shifted in zip(steps, far):
            assert near.target.shifted(10_000 - start) == shifted.target
            total = near.context_tokens + near.missing_tokens
            assert total == shifted.context_tokens + shifted.missing_tokens


@settings(max_examples=300, deadline=None)
@given(b=budgets(), start=st.integers(0, 60), length=st.integers(1, 80))
def test_upscale_packs_every_step_to_the_fixed_sequence_length(b, start, length):
    """Every upscale step (rollout or training) packs sum C_l N_l context slots (present, cut at
    frame 0 or fixed padding) plus B targets, whatever its level and position."""
    if not budget_fits("upscale", b):
        return
    fixed = context_capacity(b) + b.target_tokens
    steps = make_plan("upscale", b, start, start + length)
    assert {s.context_tokens + s.missing_tokens for s in steps} == {context_capacity(b)}
    assert {s.target_tokens for s in steps} == {b.target_tokens}
    assert {s.sequence_tokens for s in steps} == {fixed}
    for kind in step_kinds("upscale", b):  # training steps: each kind, cut at frame 0 or not
        for a in (kind.first_start, kind.first_start + start):
            assert place(kind.step, a, b.tokens).sequence_tokens == fixed


@settings(max_examples=300, deadline=None)
@given(b=budgets(), start=st.integers(0, 40), length=st.integers(1, 60), data=st.data())
def test_memory_frames_are_known_when_a_step_picks_them_or_the_plan_is_refused(
    b, start, length, data
):
    """Replayed independently: every frame a step's memory may pick is known at the memory
    level when the step runs. Only upscaling, whose coarse passes run ahead of the finer
    levels, can break this, and then the plan is refused (not the rollout after training)."""
    levels = len(b.tokens)
    b = replace(
        b,
        memory_frames=data.draw(st.integers(1, 3)),
        memory_level=data.draw(st.integers(0, levels - 1)),
        memory_pool=data.draw(st.sampled_from(["unheld", "older"])),
    )
    for method in METHODS:
        if not budget_fits(method, b):
            continue
        try:
            steps = make_plan(method, b, start, start + length)
        except BudgetError as e:
            assert method == "upscale" and "plan.memory_levels" in str(e), (method, e)
            continue
        hierarchical = len(generated_levels(method, b)) > 1
        known = {lvl: set(range(start)) for lvl in range(levels)}
        for step in steps:
            at = step.memory.level if hierarchical else 0
            pool = memory_pool(step).nonzero().flatten().tolist()
            assert all(t in known[at] for t in pool), (method, step)
            known[step.target.level].update(range(step.target.start, step.target.stop))
