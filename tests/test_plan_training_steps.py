"""Training steps are exactly the steps rollouts take (enumerated for small budgets)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.plan import (
    METHODS,
    MIN_START,
    BudgetError,
    PlanConfig,
    count_training_steps,
    make_plan,
    sample_training_step,
    step_kinds,
    training_steps,
)
from millivid.presets import load_preset

TINY = load_preset("tiny").plan


def rollout_steps(method: str, budget: PlanConfig, video_length: int, all_ends: bool = False):
    """Every step of every rollout inside the video that starts with >= MIN_START GT frames."""
    found = set()
    for start in range(MIN_START, video_length):
        ends = range(start + 1, video_length + 1) if all_ends else (video_length,)
        for end in ends:
            found.update(
                s for s in make_plan(method, budget, start, end) if s.last_frame <= video_length
            )
    return found


def test_tiny_training_steps_are_every_rollout_step_for_any_start_and_end():
    for method in METHODS:
        expect = rollout_steps(method, TINY, 24, all_ends=True)
        got = list(training_steps(method, TINY, 24))
        assert len(got) == len(set(got)) == count_training_steps(method, TINY, 24)
        assert set(got) == expect, method


def test_sample_training_step_draws_every_step_and_nothing_else():
    rng = random.Random(0)
    for method in ("millivid", "upscale", "mirrored-framepack"):
        allowed = set(training_steps(method, TINY, 24))
        drawn = [sample_training_step(method, TINY, 24, rng) for _ in range(40 * len(allowed))]
        assert set(drawn) == allowed
        levels = [s.target.level for s in drawn]
        if method == "millivid":  # fine steps are drawn about as often as rollouts take them
            assert levels.count(0) > 2 * levels.count(1) > 2 * levels.count(2)


def test_training_steps_include_cut_context_steps_near_the_start():
    steps = list(training_steps("millivid", load_preset("paper").plan, 300))
    assert any(s.missing_tokens > 0 for s in steps)
    assert any(s.missing_tokens == 0 for s in steps)
    assert {s.sequence_tokens for s in steps} == {3840}
    assert min(s.target.start for s in steps) == MIN_START
    assert max(s.last_frame for s in steps) == 300


def test_paper_kinds_match_one_period_of_the_rollout():
    kinds = step_kinds("millivid", load_preset("paper").plan)
    assert len(kinds) == 64 + 16 + 4 + 1  # 192 frames: 64 fine, 16, 4 and 1 coarse steps
    assert [k.step.target.level for k in kinds[:4]] == [3, 2, 1, 0]


def test_sample_training_step_is_deterministic_and_rejects_too_short_videos():
    a = [sample_training_step("millivid", TINY, 40, random.Random(7)) for _ in range(3)]
    b = [sample_training_step("millivid", TINY, 40, random.Random(7)) for _ in range(3)]
    assert a == b
    try:
        sample_training_step("millivid", TINY, 5, random.Random(0))
    except BudgetError as err:
        assert "needs" in str(err)
    else:
        raise AssertionError("a 5-frame video cannot hold a 16-frame coarse step")


@st.composite
def small_budgets(draw) -> PlanConfig:
    levels = draw(st.integers(1, 3))
    tokens = [draw(st.sampled_from([1, 2]))]
    for _ in range(levels - 1):
        tokens.insert(0, tokens[0] * draw(st.sampled_from([1, 2, 4])))
    return PlanConfig(
        tokens=tuple(tokens),
        context=tuple(draw(st.integers(0, 4)) for _ in range(levels)),
        target_tokens=tokens[0] * draw(st.integers(1, 2)),
        fullres_context=draw(st.integers(1, 4)),
    )


@settings(max_examples=200, deadline=None)
@given(b=small_budgets(), video_length=st.integers(2, 30))
def test_training_steps_equal_rollout_steps_for_random_small_budgets(b, video_length):
    for method in METHODS:
        try:
            expect = rollout_steps(method, b, video_length)
        except BudgetError:
            continue
        assert set(training_steps(method, b, video_length)) == expect, method
        if expect:
            step = sample_training_step(method, b, video_length, random.Random(video_length))
            assert step in expect


def test_level_weights_set_how_often_each_target_level_is_drawn():
    budget = replace(load_preset("mini").plan, level_weights=(1.0, 1.0, 1.0, 1.0))
    rng = random.Random(0)
    levels = Counter(
        sample_training_step("millivid", budget, 1024, rng).target.level for _ in range(4000)
    )
    for level in range(4):
        assert abs(levels[level] / 4000 - 0.25) < 0.03, levels
    # by default the levels come as often as rollouts take them: level 3 is 1 step in 85
    rng = random.Random(0)
    default = Counter(
        sample_training_step("millivid", load_preset("mini").plan, 1024, rng).target.level
        for _ in range(4000)
    )
    assert default[3] < 0.03 * 4000 and default[0] > 0.6 * 4000, default


def test_level_weights_zero_levels_and_methods_without_them():
    never_l0 = replace(load_preset("mini").plan, level_weights=(0.0, 1.0, 1.0, 1.0))
    rng = random.Random(1)
    assert all(
        sample_training_step("millivid", never_l0, 1024, rng).target.level > 0 for _ in range(200)
    )
    # framepack targets level 0 only: the weights of the other levels have nothing to draw
    even = replace(load_preset("mini").plan, level_weights=(1.0, 1.0, 1.0, 1.0))
    assert all(
        sample_training_step("framepack", even, 1024, rng).target.level == 0 for _ in range(50)
    )
    with pytest.raises(ValueError, match="level_weights"):
        sample_training_step("millivid", replace(even, level_weights=(1.0, 1.0)), 1024, rng)
    with pytest.raises(ValueError, match="level_weights"):
        sample_training_step("millivid", replace(even, level_weights=(0.0,) * 4), 1024, rng)
