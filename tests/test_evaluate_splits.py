"""Revisit / novel and turn / forward splits (evaluate/splits.py) and their tables (horizons.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.evaluate.horizons import FrameTable, memory_gains
from millivid.evaluate.splits import (
    frame_splits,
    nearest_context,
    pose_gaps,
    revisit_labels,
    turn_labels,
    wrap_degrees,
)

D, Y = 2.0, 15.0  # the default thresholds: 2 blocks, 15 degrees
SPEED, TURN = 0.25, 15.0  # the world's forward step and turn step


def track(actions, x=0.0, y=0.0, yaw=0.0) -> np.ndarray:
    """Flat-world poses float32 [T, 5] of an action list (0 forward, 1 left, 2 right); frame 0
    is the start pose, action t moves pose t-1 to pose t (action 0 is ignored)."""
    poses = [(x, y, 1.6, yaw, -10.0)]
    for a in actions[1:]:
        yaw += TURN if a == 1 else -TURN if a == 2 else 0.0
        if a == 0:
            x += SPEED * math.cos(math.radians(yaw))
            y += SPEED * math.sin(math.radians(yaw))
        poses.append((x, y, 1.6, yaw, -10.0))
    return np.array(poses, dtype=np.float32)


def test_wrap_and_turn_labels():
    assert wrap_degrees([190, -180, 360, 540, -190, 15]).tolist() == [-170, -180, 0, -180, 170, 15]
    assert turn_labels(np.array([0, 1, 2, 0])).tolist() == [False, True, True, False]


def test_straight_walk_away_is_novel_after_two_blocks():
    poses = track([0] * 56)  # 16 context frames, then 40 more straight ahead
    labels = revisit_labels(poses, 16, D, Y)
    # generated frame k is 0.25 k blocks past the last context frame: within 2 blocks for k <= 8
    assert labels.tolist() == [True] * 8 + [False] * 32


def test_turn_in_place_is_a_revisit_for_one_turn_frame_only():
    poses = track([0] * 16 + [1] * 12)  # a 180-degree left turn after the context
    labels = revisit_labels(poses, 16, D, Y)
    assert poses[-1, 3] == pytest.approx(180.0)
    assert labels.tolist() == [True] + [False] * 11  # 15 degrees off is a revisit, 30 is not


def test_loop_back_to_the_start_is_a_revisit():
    """A square loop (4 left turns) ends where the context began, facing the same way (yaw 360):
    the last leg revisits; the three legs away from the context are novel."""
    leg, turn = [0] * 16, [1] * 6
    actions = leg + turn + leg + turn + leg + turn + leg + turn + leg
    poses = track(actions)
    labels = revisit_labels(poses, 16, D, Y).tolist()
    expected = (
        [True]
        + [False] * 5  # first turn: only the 15-degree frame
        + [False] * 16 * 3
        + [False] * 6 * 2  # north, west, south legs and the turns between
        + [False] * 4
        + [True] * 2  # last turn at the start corner: yaw 345 and 360
        + [True] * 16  # the last leg retraces the context
    )
    assert (
        poses[-1, 3] == pytest.approx(360.0) and np.abs(poses[-1, :2] - poses[15, :2]).max() < 1e-4
    )
    assert labels == expected


def test_thresholds_are_inclusive_and_survive_float32_rounding():
    context = np.array([[100.0, 200.0, 1.6, 1037.3, -10.0]], dtype=np.float32)
    query = context.repeat(5, 0)
    query[0, 0] += 2.0  # exactly 2 blocks
    query[1, 3] += 15.0  # exactly one turn frame
    query[2, 3] -= 345.0  # 345 degrees back = 15 degrees forward
    query[3, 0] += 2.01
    query[4, 3] += 30.0
    poses = np.concatenate([context, query])
    assert revisit_labels(poses, 1, D, Y).tolist() == [True, True, True, False, False]


def test_frame_splits_without_poses_or_actions():
    poses, actions = track([0] * 20), np.array([0] * 10 + [1] * 10)
    got = frame_splits(poses, actions, 10, 20, D, Y)
    assert got["revisit"].tolist() == [True] * 8 + [False] * 2
    assert got["turn"].tolist() == [True] * 10
    assert frame_splits(None, None, 10, 20, D, Y) == {"revisit": None, "turn": None}


poses_strategy = st.lists(
    st.tuples(
        st.integers(-40, 40), st.integers(-40, 40), st.integers(-30, 30)
    ),  # x, y in quarter blocks; yaw in turn steps (the world's lattice)
    min_size=2,
    max_size=30,
)


def lattice(points) -> np.ndarray:
    return np.array([(0.25 * a, 0.25 * b, 1.6, 15.0 * c, -10.0) for a, b, c in points])


@settings(max_examples=60, deadline=None)
@given(
    poses_strategy,
    st.integers(1, 29),
    st.floats(-500, 500),
    st.floats(-500, 500),
    st.floats(-720, 720),
)
def test_revisit_labels_invariant_to_a_common_rigid_motion(points, start, tx, ty, angle):
    poses = lattice(points)
    start = min(start, len(poses) - 1)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    moved = poses.copy()
    moved[:, 0] = c * poses[:, 0] - s * poses[:, 1] + tx
    moved[:, 1] = s * poses[:, 0] + c * poses[:, 1] + ty
    moved[:, 3] = poses[:, 3] + angle
    assert (revisit_labels(moved, start, D, Y) == revisit_labels(poses, start, D, Y)).all()


@settings(max_examples=60, deadline=None)
@given(poses_strategy, st.integers(1, 29))
def test_revisit_iff_some_context_pose_within_both_thresholds(points, start):
    """Brute force over context frames agrees with the labels, and with the nearest-pose pick."""
    poses = lattice(points)
    start = min(start, len(poses) - 1)
    labels = revisit_labels(poses, start, D, Y)
    index, gap = nearest_context(poses[start:], poses[:start], D, Y)
    for i, p in enumerate(poses[start:]):
        near = [
            math.dist(p[:2], q[:2]) <= D + 1e-9 and abs((p[3] - q[3] + 180) % 360 - 180) <= Y + 1e-9
            for q in poses[:start]
        ]
        assert labels[i] == any(near)
        assert labels[i] == (gap[i] <= 1 + 1e-4)  # the nearest context frame decides
        gaps = pose_gaps(p[None], poses[:start], D, Y)[0]
        assert gaps[index[i]] == gaps.min()  # nearest-pose picks a frame of minimal gap


def test_nearest_context_breaks_gap_ties_by_the_other_difference():
    """Yaw gaps are multiples of 15 degrees, so they tie often: the closer position wins."""
    context = np.array([[3.0, 0, 0, 30.0, 0], [0.1, 0, 0, 30.0, 0], [5.0, 0, 0, 0.0, 0]])
    index, gap = nearest_context(np.zeros((1, 5)), context, D, Y)
    assert index.tolist() == [1] and gap.tolist() == [2.0]


def rows(values: dict[str, list[list[float]]], revisit, turn, metric="psnr") -> list[dict]:
    """{method: [video][frame] value} + split columns [video][frame] -> per-frame rows."""
    return [
        {
            "method": m,
            "video": f"v{v}",
            "frame": f + 1,
            "revisit": revisit[v][f],
            "turn": turn[v][f],
            metric: x,
        }
        for m, videos in values.items()
        for v, frames in enumerate(videos)
        for f, x in enumerate(frames)
    ]


REVISIT_COL = [[1, 1, 0, 0, 1, 0], [0, 1, 1, 0, 0, 0]]
TURN_COL = [[0, 0, 0, 1, 1, None], [0, 0, 0, 0, 0, 0]]
NAMES, ENDS = ("short", "long"), (2, 6)


def test_split_means_average_the_right_frames():
    a = [[10, 20, 30, 40, 50, 60], [1, 2, 3, 4, 5, 6]]
    table = FrameTable.from_rows(rows({"a": a}, REVISIT_COL, TURN_COL), ["psnr"], ENDS)
    got = table.split_means(NAMES)["a"]
    assert got["all"]["short"]["psnr"] == pytest.approx((10 + 20 + 1 + 2) / 4)
    assert got["revisit"]["short"]["psnr"] == pytest.approx((10 + 20 + 2) / 3)
    assert got["novel"]["short"]["psnr"] == pytest.approx(1.0)
    assert got["revisit"]["long"]["psnr"] == pytest.approx((50 + 3) / 2)
    assert got["novel"]["long"]["psnr"] == pytest.approx((30 + 40 + 60 + 4 + 5 + 6) / 6)
    assert got["turn"]["long"]["psnr"] == pytest.approx(45.0)
    assert got["forward"]["long"]["psnr"] == pytest.approx(
        (30 + 3 + 4 + 5 + 6) / 5
    )  # None: neither
    assert "turn" not in got or "short" not in got["turn"]
    shares = table.shares(NAMES)
    assert shares["short"] == {"frames": 4, "revisit": 0.75, "turn": 0.0}
    assert shares["long"]["frames"] == 8 and shares["long"]["revisit"] == pytest.approx(2 / 8)
    assert shares["long"]["turn"] == pytest.approx(2 / 7)  # one frame has no action
    assert table.revisit_curve() == [0.5, 1.0, 0.5, 0.0, 0.5, 0.0]


def test_memory_gain_arithmetic():
    a = [[10, 20, 30, 40, 50, 60], [1, 2, 3, 4, 5, 6]]
    ref = [[11, 18, 0, 0, 40, 0], [0, 2, 1, 0, 0, 0]]
    table = FrameTable.from_rows(
        rows({"a": a, "nearest-pose": ref}, REVISIT_COL, TURN_COL), ["psnr"], ENDS
    )
    gain = memory_gains(table, NAMES, "nearest-pose")
    assert gain["reference"] == "nearest-pose"
    novel_short, revisit_short = 1.0, (10 + 20 + 2) / 3
    assert gain["vs_novel"]["a"]["short"]["psnr"] == pytest.approx(revisit_short - novel_short)
    # same frames: (10-11) + (20-18) + (2-2) over 3 in short; (50-40) + (3-1) over 2 in long
    assert gain["vs_reference"]["a"]["short"]["psnr"] == pytest.approx(1 / 3)
    assert gain["vs_reference"]["a"]["long"]["psnr"] == pytest.approx(6.0)
    assert "nearest-pose" not in gain["vs_reference"]
    lower = FrameTable.from_rows(rows({"a": a}, REVISIT_COL, TURN_COL, "lpips"), ["lpips"], ENDS)
    flipped = memory_gains(lower, NAMES)["vs_novel"]["a"]["short"]["lpips"]  # lower is better
    assert flipped == pytest.approx(-(revisit_short - novel_short))
    assert memory_gains(lower, NAMES)["vs_reference"] == {}  # no nearest-pose method


def test_memory_gain_pairs_only_shared_frames():
    a = [[10, 20, 30, 40, 50, 60], [1, 2, 3, 4, 5, 6]]
    ref = [[0, 0, 0, 0, 0, 0]]  # the reference has only video v0
    table = FrameTable.from_rows(
        rows({"a": a, "nearest-pose": ref}, REVISIT_COL, TURN_COL), ["psnr"], ENDS
    )
    gain = memory_gains(table, NAMES, "nearest-pose")["vs_reference"]["a"]
    assert gain["short"]["psnr"] == pytest.approx(15.0) and gain["long"]["psnr"] == 50.0
