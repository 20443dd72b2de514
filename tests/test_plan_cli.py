"""``millivid plan``: the JSON contract other tools rely on, the table, errors and pictures."""

from __future__ import annotations

import json

import pytest

from millivid.cli import main
from millivid.plan.draw import CONTEXT, FIXED, PENDING, TARGET, cell_states
from millivid.plan.step import Span, Step

FIG10 = ["--tokens", "256,64,16", "--context", "1,4,16", "--target-tokens", "256"]


def run_json(capsys, *argv: str) -> dict:
    assert main(["plan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_contract_fig10(capsys):
    out = run_json(capsys, "--method", "millivid", *FIG10, "--start", "22", "--end", "38")
    assert set(out) == {"method", "steps"} and out["method"] == "millivid"
    assert len(out["steps"]) == 21
    first = out["steps"][0]
    assert first == {
        "target": {"level": 2, "frames": [22, 38]},
        "context": [
            {"level": 0, "frames": [21, 22]},
            {"level": 1, "frames": [17, 21]},
            {"level": 2, "frames": [1, 17]},
        ],
        "context_tokens": 768,
        "target_tokens": 256,
    }


def test_json_contract_paper_and_fullres(capsys):
    paper = ["--tokens", "256,64,16,4", "--start", "256", "--end", "1024"]
    out = run_json(
        capsys,
        "--method",
        "millivid",
        *paper,
        "--context",
        "3,12,48,192",
        "--target-tokens",
        "768",
    )
    assert len(out["steps"]) == 340
    assert {(s["context_tokens"], s["target_tokens"]) for s in out["steps"]} == {(3072, 768)}
    full = run_json(
        capsys, "--method", "fullres", *paper, "--context", "7", "--target-tokens", "1792"
    )
    assert len(full["steps"]) == 110
    assert full["steps"][0]["context"] == [{"level": 0, "frames": [249, 256]}]


def test_preset_budgets_and_missing_tokens_in_json(capsys):
    out = run_json(capsys, "--method", "millivid", "--preset", "tiny", "--start", "3", "--end", "5")
    assert out["steps"][0]["missing_tokens"] > 0  # context cut at frame 0
    assert all(s["target_tokens"] == 16 for s in out["steps"])


def test_table_has_totals(capsys):
    assert main(["plan", "--method", "millivid", *FIG10, "--start", "22", "--end", "38"]) == 0
    text = capsys.readouterr().out
    assert "steps: 21 (L0 16, L1 4, L2 1)" in text
    assert "context 768 + memory 0 + missing 0 + target 256 = sequence 1024" in text


def test_memory_frames_in_the_json_and_the_totals(capsys):
    argv = ["--method", "millivid", *FIG10, "--start", "22", "--end", "38", "--memory-frames", "2"]
    out = run_json(capsys, *argv)
    assert all(
        s["memory"] == {"level": 0, "frames": 2, "tokens": 512, "pool": "unheld"}
        for s in out["steps"]
    )
    assert main(["plan", *argv, "--memory-level", "2", "--memory-pool", "older"]) == 0
    assert "memory 32 + missing 0 + target 256 = sequence 1056" in capsys.readouterr().out
    assert main(["plan", *argv, "--memory-level", "3"]) == 1
    assert "plan.memory_level = 3" in capsys.readouterr().err
    # a memory level per target level, in the same 512 tokens: 8 level-1, 32 level-2 frames
    out = run_json(capsys, *argv, "--memory-levels", "0,1,2")
    seen = {
        (s["target"]["level"], s["memory"]["level"], s["memory"]["frames"]) for s in out["steps"]
    }
    assert seen == {(0, 0, 2), (1, 1, 8), (2, 2, 32)}
    assert {s["memory"]["tokens"] for s in out["steps"]} == {512}
    assert main(["plan", *argv, "--memory-levels", "0,1"]) == 1
    assert "one memory level per target level, 3 values" in capsys.readouterr().err


def test_table_shows_each_steps_memory_frames(capsys):
    """Each row names the frames a step retrieves (count × level); without memory no column."""
    argv = ["plan", "--method", "millivid", *FIG10, "--start", "22", "--end", "38"]
    assert main([*argv, "--memory-frames", "2", "--memory-levels", "0,1,2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:6] == ["step", "target", "ctx", "miss", "tgt", "memory"]
    rows = [line.split() for line in lines[2:] if line[:5].strip().isdigit()]
    assert {(r[1][:2], r[5]) for r in rows} == {("L0", "2×L0"), ("L1", "8×L1"), ("L2", "32×L2")}
    assert main(argv) == 0
    assert "memory" not in capsys.readouterr().out.splitlines()[1]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (
            ["--method", "fullres", "--tokens", "256", "--context", "7", "--target-tokens", "512"],
            "1792",
        ),
        (["--method", "fullres", "--tokens", "256", "--context", "7,3"], "one number"),
        (["--method", "millivid", "--tokens", "256,64", "--context", "1,x"], "integers"),
        (["--method", "millivid", "--context", "1,4"], "--tokens"),
        (
            [
                "--method",
                "millivid",
                "--tokens",
                "64,16",
                "--context",
                "1,4,16",
                "--target-tokens",
                "64",
            ],
            "plan.context",
        ),
    ],
)
def test_bad_flags_fail_with_a_clear_error(capsys, argv, words):
    assert main(["plan", *argv, "--start", "4", "--end", "8"]) == 1
    assert words in capsys.readouterr().err


def test_cell_states_colour_context_target_fixed_pending():
    step = Step(Span(1, 4, 6), (Span(0, 2, 4), Span(1, 0, 2)), 0, 0)
    grid = cell_states(step, known=[4, 4], rows=2, lo=0, hi=8)
    assert grid[0] == [FIXED, FIXED, CONTEXT, CONTEXT, PENDING, PENDING, PENDING, PENDING]
    assert grid[1] == [CONTEXT, CONTEXT, FIXED, FIXED, TARGET, TARGET, PENDING, PENDING]


def test_pictures_are_written(tmp_path, capsys):
    png, svg, gif = tmp_path / "p.png", tmp_path / "p.svg", tmp_path / "p.gif"
    argv = ["plan", "--method", "mirrored-framepack", "--preset", "tiny", "--start", "20"]
    assert (
        main([*argv, "--end", "24", "--png", str(png), "--svg", str(svg), "--gif", str(gif)]) == 0
    )
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in svg.read_bytes()[:500]
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 4 + 2  # initial, 4 steps, final
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_end_line_visible_when_end_is_the_last_drawn_column():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from millivid.plan import PlanConfig, make_plan
    from millivid.plan.draw import _draw_groups, _layout

    budget = PlanConfig(tokens=(256, 64, 16), context=(1, 4, 16), target_tokens=256)
    steps = make_plan("framepack", budget, 22, 38)
    groups, rows, lo, hi = _layout("framepack", budget, 22, 38, steps, 40)
    assert hi == 38  # the last target ends exactly at `end`
    fig, ax = plt.subplots()
    _draw_groups(ax, groups, rows, lo, hi, 22, 38, True, 7)
    dashed = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    right = ax.get_xlim()[1]
    plt.close(fig)
    assert dashed == [37.5] and right >= 37.5 + 0.5  # drawn, and clear of the plot's edge


def test_a_plan_past_the_frame_limit_is_refused_at_once(capsys):
    """``--end 100000000`` would build ~130 million steps (hours); one frame over the limit is
    refused as clearly, and the limit itself is still planned."""
    from millivid.plan import make_plan
    from millivid.presets import load_preset

    for end in (256 + 100_001, 100_000_000):  # the first fails fast without the limit
        argv = ["plan", "--method", "millivid", "--preset", "tiny", "--start", "256"]
        assert main([*argv, "--end", str(end), "--json"]) == 1
        err = capsys.readouterr().err
        assert f"plan start=256, end={end}: {end - 256:,} frames to generate" in err
        assert "more than the 100,000 one plan may hold" in err and "--frames" in err
    assert len(make_plan("fullres", load_preset("paper").plan, 0, 100_000)) == 14_286  # the limit
