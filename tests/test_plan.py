"""Exact cases of the rollout planner: the paper's Fig. 10, the paper config (§A.2, A.3), the end
of a rollout and the start of a video, and bad budgets."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from millivid.plan import (
    METHODS,
    BudgetError,
    ContextSource,
    PlanConfig,
    Span,
    check_plan,
    context_source,
    generated_levels,
    make_plan,
    max_lookback,
)

FIG10 = PlanConfig(tokens=(256, 64, 16), context=(1, 4, 16), target_tokens=256)
PAPER = PlanConfig(
    tokens=(256, 64, 16, 4), context=(3, 12, 48, 192), target_tokens=768, fullres_context=7
)


def test_fig10_has_21_steps_and_the_paper_first_three():
    steps = make_plan("millivid", FIG10, 22, 38)
    assert len(steps) == 21
    assert [s.target for s in steps[:3]] == [Span(2, 22, 38), Span(1, 22, 26), Span(0, 22, 23)]
    assert [s.target.level for s in steps].count(0) == 16
    assert [s.target.level for s in steps].count(1) == 4
    # the fine step sees the most recent fine frame and the coarser future already generated
    assert steps[2].context == (Span(0, 21, 22), Span(1, 22, 26), Span(2, 22, 38))
    assert {s.context_tokens for s in steps} == {1 * 256 + 4 * 64 + 16 * 16}
    assert {s.target_tokens for s in steps} == {256}


def test_fig10_medium_step_context_stacks_fine_then_medium_then_coarse_future():
    medium = make_plan("millivid", FIG10, 22, 38)[1]
    assert medium.context == (Span(0, 21, 22), Span(1, 17, 21), Span(2, 22, 38))


def test_recent_plan_shows_each_steps_own_level_just_before_its_target():
    paper, recent = (
        make_plan("millivid", PAPER, 256, 1024),
        make_plan("millivid-recent", PAPER, 256, 1024),
    )
    assert [s.target for s in recent] == [s.target for s in paper]
    # the coarse step: its own level [a - 192, a), then levels 0, 1, 2 stacked behind it
    assert recent[0].context == (Span(0, 61, 64), Span(1, 49, 61), Span(2, 1, 49), Span(3, 64, 256))
    # a level-1 step: level 1 right before a, level 0 behind it, the coarser future unchanged
    level1 = next(i for i, s in enumerate(paper) if s.target.level == 1)
    assert recent[level1].context[:2] == (Span(0, 241, 244), Span(1, 244, 256))
    assert recent[level1].context[2:] == paper[level1].context[2:]
    # level-0 steps are the paper's; the lookback and the token counts are unchanged
    assert all(r == p for r, p in zip(recent, paper) if p.target.level == 0)
    assert max_lookback("millivid-recent", PAPER) == 255
    check_plan("millivid-recent", PAPER, 256, 1024, recent)


def test_paper_config_340_steps_of_3072_plus_768_tokens():
    steps = make_plan("millivid", PAPER, 256, 1024)
    assert len(steps) == 340
    assert all(s.context_tokens == 3072 and s.target_tokens == 768 for s in steps)
    assert all(s.missing_tokens == 0 for s in steps)
    coarse = steps[0]
    assert coarse.target == Span(3, 256, 448)
    assert min(s.start for s in coarse.context) == 256 - 255
    assert sum(s.frames for s in coarse.context) == 255  # frames [1, 256) seen, each once
    check_plan("millivid", PAPER, 256, 1024, steps)


def test_paper_baseline_step_counts_and_ratio():
    framepack = make_plan("framepack", PAPER, 256, 1024)
    assert len(framepack) == 256
    assert all(s.target.frames == 3 and s.target.level == 0 for s in framepack)
    assert {s.sequence_tokens for s in framepack} == {3840}
    fullres = make_plan("fullres", PAPER, 256, 1024)
    assert len(fullres) == 110
    assert {(s.context_tokens, s.target_tokens) for s in fullres} == {(7 * 256, 7 * 256)}
    ratio = len(make_plan("millivid", PAPER, 256, 1024)) / len(framepack)
    assert ratio == pytest.approx(4 / 3, abs=0.01)  # paper A.3: about 33% more steps


def test_mirrored_framepack_paper_layout_mirrors_context():
    step = make_plan("mirrored-framepack", PAPER, 256, 1024)[0]
    assert step.target == Span(0, 256, 259)
    assert step.context == (
        Span(0, 253, 256),
        Span(1, 247, 253),
        Span(2, 223, 247),
        Span(3, 127, 223),
    )
    assert step.discarded == (Span(1, 259, 265), Span(2, 265, 289), Span(3, 289, 385))
    assert step.context_tokens == step.target_tokens == 1920
    assert len(make_plan("mirrored-framepack", PAPER, 256, 1024)) == 256


def test_upscale_rolls_out_coarsest_first_then_upscales():
    steps = make_plan("upscale", FIG10, 22, 38)
    assert [s.target.level for s in steps] == [2] + [1] * 4 + [0] * 16
    fine = steps[5]
    # own recent past and the next-coarser version of the target only
    assert fine.context[-1] == Span(1, 22, 23)
    assert {sp.level for sp in fine.context} == {0, 1}
    assert len({s.sequence_tokens for s in steps}) == 1


@pytest.mark.parametrize("method", list(METHODS))
def test_end_not_a_multiple_runs_the_last_chunk_past_end(method):
    steps = make_plan(method, PAPER, 256, 300)  # 44 frames: no level's chunk divides it
    check_plan(method, PAPER, 256, 300, steps)
    for level in generated_levels(method, PAPER):
        last = [s.target for s in steps if s.target.level == level][-1]
        assert last.start < 300 <= last.stop
    # every step keeps the trained token counts: nothing is shortened
    assert len({(s.context_tokens, s.target_tokens) for s in steps}) <= len(PAPER.tokens)
    assert len({s.target.frames for s in steps if s.target.level == 0}) == 1


def test_start_of_video_cuts_context_and_counts_missing_tokens():
    steps = make_plan("millivid", PAPER, 10, 20)
    coarse = steps[0]
    assert min(s.start for s in coarse.context) == 0
    assert coarse.missing_tokens > 0
    assert all(s.context_tokens + s.missing_tokens == 3072 for s in steps)
    assert all(s.start >= 0 and s.frames > 0 for st in steps for s in st.context)
    check_plan("millivid", PAPER, 10, 20, steps)


def test_start_zero_has_no_context_at_all():
    step = make_plan("framepack", PAPER, 0, 3)[0]
    assert step.context == () and step.context_tokens == 0 and step.missing_tokens == 3072


def test_missing_tokens_exact_for_a_cut_coarse_step():
    # coarse step at a=10: level 0 [7,10), level 1 [0,7) (5 of 12 cut), 2 and 3 wholly cut
    coarse = make_plan("millivid", PAPER, 10, 20)[0]
    assert coarse.context == (Span(0, 7, 10), Span(1, 0, 7))
    assert coarse.missing_tokens == 5 * 64 + 48 * 16 + 192 * 4


def test_step_counts_follow_the_closed_form():
    for start, end in [(256, 1024), (5, 6), (100, 357)]:
        expect = sum(math.ceil((end - start) / t) for t in (3, 12, 48, 192))
        assert len(make_plan("millivid", PAPER, start, end)) == expect
        assert len(make_plan("cascaded", PAPER, start, end)) == expect


def test_context_sources_and_lookbacks():
    assert context_source("framepack") == "patchify"
    assert context_source("mirrored-framepack") == "patchify"
    for method in (
        "millivid",
        "millivid-recent",
        "cascaded",
        "hierarchical-framepack",
        "fullres",
        "upscale",
    ):
        assert context_source(method) == "levels"
    assert max_lookback("millivid", PAPER) == 255
    assert max_lookback("framepack", PAPER) == 255
    assert max_lookback("fullres", PAPER) == 7
    assert max_lookback("mirrored-framepack", PAPER) == 129


def test_a_method_says_what_its_budget_counts_and_which_levels_it_uses():
    fullres = METHODS["fullres"]
    assert fullres.frame_budget and fullres.context_frames(PAPER) == (7,)
    assert fullres.target_tokens(PAPER) == 7 * 256  # K context + K target level-0 frames
    steps = make_plan("fullres", PAPER, 256, 1024)
    assert {(s.context_tokens, s.target_tokens) for s in steps} == {(7 * 256, 7 * 256)}
    for name in ("millivid", "framepack", "upscale", "mirrored-framepack"):
        method = METHODS[name]
        assert not method.frame_budget and method.context_frames(PAPER) == PAPER.context
        assert method.target_tokens(PAPER) == PAPER.target_tokens
    assert METHODS["millivid"].generated_levels(PAPER) == (0, 1, 2, 3)
    assert METHODS["framepack"].generated_levels(PAPER) == (0,)
    # the levels drawn are the levels the spans use: 1 of 4 for fullres, else every level
    small = PlanConfig(tokens=(16, 4, 1), context=(1, 2, 4), target_tokens=16)
    for budget in (PAPER, FIG10, small):
        for name, method in METHODS.items():
            steps = make_plan(name, budget, 64, 128)
            used = {
                s.level for step in steps for s in (*step.context, step.target, *step.discarded)
            }
            assert method.drawn_levels(budget) == max(used) + 1, (name, budget)
    assert METHODS["fullres"].drawn_levels(PAPER) == 1


def test_a_context_source_says_where_spans_live_and_how_they_are_packed():
    patchify, levels = ContextSource("patchify"), ContextSource.LEVELS
    assert patchify is ContextSource.PATCHIFY and json.dumps(patchify) == '"patchify"'
    assert (patchify.stored_level(2), patchify.kernel(2), patchify.input_kernels(4)) == (0, 2, 4)
    assert (levels.stored_level(2), levels.kernel(2), levels.input_kernels(4)) == (2, 0, 1)
    assert (patchify.token_channels(16, 4), levels.token_channels(16, 4)) == (1024, 16)
    assert (patchify.levels_needed(4), levels.levels_needed(4)) == (1, 4)
    with pytest.raises(
        ValueError, match=r"unknown context source 'pixels' \(known: levels, patchify\)"
    ):
        ContextSource("pixels")


def test_to_json_shape():
    step = make_plan("mirrored-framepack", PAPER, 1, 2)[0]
    out = step.to_json()
    assert out["target"] == {"level": 0, "frames": [1, 4]}
    assert out["context"][0] == {"level": 0, "frames": [0, 1]}
    assert set(out) == {
        "target",
        "context",
        "context_tokens",
        "target_tokens",
        "discarded",
        "missing_tokens",
    }
    plain = make_plan("millivid", PAPER, 256, 257)[0].to_json()
    assert set(plain) == {"target", "context", "context_tokens", "target_tokens"}


@pytest.mark.parametrize(
    ("budget", "method", "words"),
    [
        (
            PlanConfig(tokens=(64, 16), context=(3, 12), target_tokens=100),
            "millivid",
            "target_tokens",
        ),
        (PlanConfig(tokens=(64, 24), context=(3, 12), target_tokens=192), "millivid", "tokens[0]"),
        (PlanConfig(tokens=(64, 16), context=(3,), target_tokens=192), "framepack", "context"),
        (PlanConfig(tokens=(16, 4), context=(0, 0), target_tokens=16), "upscale", "upscale"),
        (
            PlanConfig(tokens=(16, 4), context=(0, 1), target_tokens=16),
            "mirrored-framepack",
            "half",
        ),
        (PlanConfig(fullres_context=0), "fullres", "fullres_context"),
    ],
)
def test_bad_budgets_raise_errors_naming_the_field(budget, method, words):
    with pytest.raises(BudgetError, match=words.replace("[", r"\[").replace("]", r"\]")):
        make_plan(method, budget, 4, 8)


def test_unknown_method_and_bad_range():
    with pytest.raises(BudgetError, match="known: millivid"):
        make_plan("nope", PAPER, 0, 4)
    with pytest.raises(BudgetError, match="start"):
        make_plan("millivid", PAPER, 8, 8)


def test_importing_every_plan_module_does_not_import_torch():
    """plan/ is pure Python (STYLE.md): the planner must stay usable without torch."""
    code = (
        "import importlib, pkgutil, sys, millivid.plan as p\n"
        "names = [m.name for m in pkgutil.iter_modules(p.__path__, 'millivid.plan.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "assert len(names) >= 10, names\n"
        "assert 'torch' not in sys.modules, 'millivid.plan imported torch'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
