"""Per-frame metric values -> averages over the paper's horizons (short / medium / long)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def horizon_ranges(
    n_frames: int, names: Sequence[str], ends: Sequence[int]
) -> dict[str, tuple[int, int]]:
    """0-based [start, stop) of each horizon that ``n_frames`` generated frames reach.

    Horizon i covers generated frames ends[i-1]+1 .. ends[i] (1-based; frame 1 = first generated
    frame). A horizon whose first frame is beyond ``n_frames`` is omitted; one that is only partly
    reached averages the frames that exist.
    """
    if len(names) != len(ends):
        raise ValueError(f"{len(names)} horizon names but {len(ends)} horizon ends")
    if list(ends) != sorted(ends) or (len(ends) and ends[0] < 1):
        raise ValueError(f"horizon ends must be increasing and >= 1, got {list(ends)}")
    out: dict[str, tuple[int, int]] = {}
    first = 0
    for name, end in zip(names, ends):
        if first < n_frames:
            out[name] = (first, min(end, n_frames))
        first = end
    return out


def horizon_means(
    per_frame: dict[str, Sequence[float]], names: Sequence[str], ends: Sequence[int]
) -> dict[str, dict[str, float]]:
    """{metric: [T] values} -> {horizon: {metric: mean over that horizon's frames}}."""
    out: dict[str, dict[str, float]] = {}
    for metric, values in per_frame.items():
        arr = np.asarray(values, dtype=np.float64)
        for name, (a, b) in horizon_ranges(len(arr), names, ends).items():
            out.setdefault(name, {})[metric] = float(np.nanmean(arr[a:b]))
    return out
