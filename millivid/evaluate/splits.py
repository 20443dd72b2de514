"""Which generated frames revisit the context, and which are turns: the memory benchmark's splits.

A generated frame is a *revisit* when its ground-truth pose is within ``distance`` blocks (x-y)
and ``yaw`` degrees (wrapped to [-180, 180]) of some context frame's pose, else *novel*; it is a
*turn* when its ground-truth action is left or right, else *forward*. Both come from the ground
truth only, so every method of a test video is split the same way.

The pose gap of two poses is the larger of the two normalised differences,
``max(|Δxy| / distance, |Δyaw| / yaw)``, so "within both thresholds" is "gap <= 1", and the
context frame of smallest gap (``nearest_context``, the nearest-pose baseline) is within both
thresholds exactly when the frame is a revisit.
"""

from __future__ import annotations

import numpy as np

# poses are float32; distances and yaws that sit exactly on a threshold (the yaw only takes
# multiples of 15° relative to the start) must not flip with rounding
GAP_TOLERANCE = 1e-4
SPLITS = ("all", "revisit", "novel", "turn", "forward")
SPLIT_COLUMNS = ("revisit", "turn")  # per_frame.csv columns: 1, 0 or empty (unknown)
SPLIT_RULE = {  # split -> (column, value); "all" keeps every frame
    "revisit": ("revisit", 1),
    "novel": ("revisit", 0),
    "turn": ("turn", 1),
    "forward": ("turn", 0),
}
ACTION_METRICS = ("action_acc",)  # metrics also split into turn / forward frames
TURN_ACTIONS = (1, 2)  # millivid.world.agent LEFT, RIGHT


def wrap_degrees(angle: np.ndarray) -> np.ndarray:
    """Angles in degrees wrapped to [-180, 180)."""
    return (np.asarray(angle, dtype=np.float64) + 180.0) % 360.0 - 180.0


def _normalised_differences(q, c, distance: float, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """(|Δxy| / distance, |wrap(Δyaw)| / yaw), each float64 [N, M], of poses q [N, 5], c [M, 5]."""
    q, c = np.asarray(q, np.float64), np.asarray(c, np.float64)
    dxy = np.linalg.norm(q[:, None, :2] - c[None, :, :2], axis=-1)
    dyaw = np.abs(wrap_degrees(q[:, None, 3] - c[None, :, 3]))
    return dxy / distance, dyaw / yaw


def pose_gaps(query: np.ndarray, context: np.ndarray, distance: float, yaw: float) -> np.ndarray:
    """Normalised pose gaps float64 [N, M] = max(|Δxy| / distance, |wrap(Δyaw)| / yaw).

    query float [N, 5], context float [M, 5] (x, y, z, yaw°, pitch°; z and pitch are ignored).
    """
    return np.maximum(*_normalised_differences(query, context, distance, yaw))


def nearest_context(
    query: np.ndarray, context: np.ndarray, distance: float, yaw: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each query pose the context pose of smallest gap: (index int64 [N], gap float64 [N]).

    Ties of the gap (common: yaw differences are multiples of 15°) go to the smallest sum of the
    two normalised differences, then to the earliest context frame.
    """
    if len(context) == 0:
        raise ValueError("nearest_context needs at least one context pose")
    dxy, dyaw = _normalised_differences(query, context, distance, yaw)
    gaps = np.maximum(dxy, dyaw)  # [N, M]
    best = gaps.min(axis=1, keepdims=True)
    index = np.where(gaps == best, dxy + dyaw, np.inf).argmin(axis=1)
    return index.astype(np.int64), best[:, 0]


def revisit_labels(poses: np.ndarray, start: int, distance: float, yaw: float) -> np.ndarray:
    """bool [T - start]: frame start + i is within both thresholds of a context frame [0, start).

    poses float [T, 5] of the ground truth; ``start`` = number of context frames.
    """
    if not 0 < start <= len(poses):
        raise ValueError(f"revisit labels need 0 < start <= {len(poses)} frames, got {start}")
    _, gap = nearest_context(poses[start:], poses[:start], distance, yaw)
    return gap <= 1.0 + GAP_TOLERANCE


def turn_labels(actions: np.ndarray) -> np.ndarray:
    """bool [T]: the action of the frame is a turn (left or right) rather than forward."""
    return np.isin(np.asarray(actions), TURN_ACTIONS)


def frame_splits(
    poses: np.ndarray | None,
    actions: np.ndarray | None,
    start: int,
    stop: int,
    distance: float,
    yaw: float,
) -> dict[str, np.ndarray | None]:
    """Split columns of the compared frames [start, stop): {"revisit": bool [stop - start] or
    None without poses (or without a context frame), "turn": bool [stop - start] or None without
    actions}; poses float [T, 5], actions int [T] of the ground truth.
    """
    revisit = None
    if poses is not None and 0 < start <= min(stop, len(poses)):
        revisit = revisit_labels(np.asarray(poses)[:stop], start, distance, yaw)
    turn = None if actions is None else turn_labels(np.asarray(actions)[start:stop])
    return {"revisit": revisit, "turn": turn}


def in_split(row: dict, split: str) -> bool:
    """Whether a per-frame row (with split columns 1 / 0 / None) belongs to ``split``."""
    if split == "all":
        return True
    column, value = SPLIT_RULE[split]
    return row.get(column) is not None and int(row[column]) == value
