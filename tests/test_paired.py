"""Paired per-video differences between methods (evaluate/horizons.paired_differences)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.evaluate.horizons import paired_differences

NAMES, ENDS = ("short", "long"), (2, 6)


def rows_of(values: dict[str, list[list[float]]]) -> list[dict]:
    """{method: [video][frame] psnr} -> per-frame rows as the evaluation writes them."""
    return [
        {"method": m, "video": f"{v:03d}", "frame": f + 1, "psnr": x}
        for m, videos in values.items()
        for v, frames in enumerate(videos)
        for f, x in enumerate(frames)
    ]


def test_known_differences():
    ref = [[10, 10, 10, 10, 10, 10], [12, 12, 14, 14, 14, 14], [8, 8, 8, 8, 8, 8]]
    other = [[11, 11, 9, 9, 9, 9], [12, 12, 16, 16, 16, 16], [9, 9, 10, 10, 10, 10]]
    out = paired_differences(rows_of({"ref": ref, "b": other}), ("psnr",), NAMES, ENDS, "ref")
    assert list(out) == ["b"]  # the reference is not compared with itself
    short, long = out["b"]["short"]["psnr"], out["b"]["long"]["psnr"]
    assert short["mean"] == pytest.approx(2 / 3) and short["videos"] == 3
    assert short["wins"] == pytest.approx(2 / 3)  # video 1 ties: not a win
    d = np.array([-1.0, 2.0, 2.0])
    assert long["mean"] == pytest.approx(1.0)
    assert long["ci95"] == pytest.approx(1.96 * d.std(ddof=1) / math.sqrt(3))
    assert long["wins"] == pytest.approx(2 / 3)


def test_only_shared_videos_and_fallback_reference():
    rows = rows_of({"a": [[1.0] * 6] * 3, "b": [[2.0] * 6] * 2})
    out = paired_differences(rows, ("psnr",), NAMES, ENDS, "missing")  # falls back to the first
    cell = out["b"]["long"]["psnr"]
    assert cell["videos"] == 2 and cell["mean"] == pytest.approx(1.0) and cell["ci95"] == 0.0
    one = paired_differences(rows_of({"a": [[1.0] * 6], "b": [[3.0] * 6]}), ("psnr",), NAMES, ENDS)
    assert math.isnan(one["b"]["short"]["psnr"]["ci95"])  # one video: no interval


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.lists(st.floats(0, 50), min_size=6, max_size=6), min_size=2, max_size=5),
    st.floats(-5, 5),
)
def test_constant_offset(videos, c):
    """A method that is the reference plus c on every frame differs by exactly c, with no spread,
    and wins on every video exactly when c > 0."""
    shifted = [[x + c for x in v] for v in videos]
    out = paired_differences(rows_of({"ref": videos, "b": shifted}), ("psnr",), NAMES, ENDS, "ref")
    for h in NAMES:
        cell = out["b"][h]["psnr"]
        assert cell["mean"] == pytest.approx(c, abs=1e-9)
        assert cell["ci95"] == pytest.approx(0.0, abs=1e-6)
        assert cell["wins"] == (1.0 if c > 1e-9 else 0.0) or abs(c) <= 1e-9


def test_a_one_video_cell_says_there_is_no_interval_instead_of_nan():
    from millivid.evaluate.markdown import _paired_cell

    cell = {"mean": 2.0, "ci95": float("nan"), "wins": 1.0, "videos": 1}
    assert _paired_cell(cell, 1) == "+2.000 (one video: no interval) (100 %)"
    assert "nan" not in _paired_cell(cell, 1)
    assert _paired_cell({**cell, "ci95": 0.5, "videos": 2}, 2) == "+2.000 ± 0.500 (100 %)"
