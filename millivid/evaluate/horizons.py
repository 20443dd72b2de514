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


def paired_differences(
    rows: Sequence[dict],
    metrics: Sequence[str],
    names: Sequence[str],
    ends: Sequence[int],
    reference: str = "millivid",
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """How every method differs from ``reference`` (the first method when it is absent), paired
    over the videos both have: per method, horizon and metric, the mean over videos of
    (method − reference) of the per-video horizon means, its 95% interval half-width
    (1.96·sd/√n; NaN for one video), the share of videos where the method is better (ties are
    not) and the number of videos. ``rows``: per-frame rows (method, video, frame 1-based, metrics).
    """
    from millivid.evaluate.suite import HIGHER_IS_BETTER

    per_video: dict[str, dict[str, dict[str, dict[str, float]]]] = {}  # method->video->h->m
    series: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    for r in rows:
        frames = series.setdefault((r["method"], r["video"]), {m: {} for m in metrics})
        for m in metrics:
            frames[m][int(r["frame"])] = float(r[m])
    for (method, video), frames in series.items():
        curves = {m: [f[k] for k in sorted(f)] for m, f in frames.items()}
        per_video.setdefault(method, {})[video] = horizon_means(curves, names, ends)
    if not per_video:
        return {}
    ref = reference if reference in per_video else next(iter(per_video))
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for method, videos in per_video.items():
        shared = [v for v in videos if v in per_video[ref]]
        if method == ref or not shared:
            continue
        for h in names:
            for m in metrics:
                pairs = [
                    (videos[v][h][m], per_video[ref][v][h][m])
                    for v in shared
                    if h in videos[v] and h in per_video[ref][v]
                ]
                if not pairs:
                    continue
                d = np.array([a - b for a, b in pairs])
                sign = 1.0 if HIGHER_IS_BETTER.get(m, True) else -1.0
                n = len(d)
                out.setdefault(method, {}).setdefault(h, {})[m] = {
                    "mean": float(d.mean()),
                    "ci95": float(1.96 * d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
                    "wins": float(np.mean(sign * d > 0)),
                    "videos": n,
                }
    return out
