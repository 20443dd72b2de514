"""Per-frame metric values -> averages over the paper's horizons (short / medium / long), over
the revisit / novel and turn / forward splits, paired differences and memory gains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from millivid.evaluate.splits import SPLITS, in_split
from millivid.evaluate.suite import goodness


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
            out.setdefault(name, {})[metric] = _nanmean(arr[a:b])  # NaN: no frame scored
    return out


@dataclass
class FrameTable:
    """Per-frame rows (method, video, frame 1-based, split columns, metrics) as arrays of N rows.

    ``horizon`` int64 [N] is the horizon index of each frame (-1 past the last horizon end);
    ``splits`` {split: bool [N]}; ``values`` {metric: float64 [N]}.
    """

    methods: list[str]
    videos: list[str]
    method: np.ndarray
    video: np.ndarray
    frame: np.ndarray
    horizon: np.ndarray
    splits: dict[str, np.ndarray]
    values: dict[str, np.ndarray]

    @classmethod
    def from_rows(cls, rows: Sequence[dict], metrics: Sequence[str], ends: Sequence[int]):
        methods = list(dict.fromkeys(r["method"] for r in rows))
        videos = list(dict.fromkeys(r["video"] for r in rows))
        m_id, v_id = {m: i for i, m in enumerate(methods)}, {v: i for i, v in enumerate(videos)}
        frame = np.array([int(r["frame"]) for r in rows], dtype=np.int64)
        horizon = np.searchsorted(np.asarray(ends), frame, side="left")
        return cls(
            methods=methods,
            videos=videos,
            method=np.array([m_id[r["method"]] for r in rows], dtype=np.int64),
            video=np.array([v_id[r["video"]] for r in rows], dtype=np.int64),
            frame=frame,
            horizon=np.where(horizon < len(ends), horizon, -1),
            splits={s: np.array([in_split(r, s) for r in rows], dtype=bool) for s in SPLITS},
            values={m: np.array([float(r[m]) for r in rows], dtype=np.float64) for m in metrics},
        )

    def present_splits(self) -> list[str]:
        """The splits that hold at least one frame ("all" whenever there are rows)."""
        return [s for s in SPLITS if self.splits[s].any()]

    def split_means(self, names: Sequence[str]) -> dict:
        """{method: {split: {horizon: {metric: mean}}}}: pooled over every (video, frame) of the
        method in the split and horizon (NaN values skipped); empty cells are left out."""
        out: dict = {}
        for i, method in enumerate(self.methods):
            for split in self.present_splits():
                for k, h in enumerate(names):
                    keep = (self.method == i) & self.splits[split] & (self.horizon == k)
                    if not keep.any():
                        continue
                    cell = {m: _nanmean(v[keep]) for m, v in self.values.items()}
                    out.setdefault(method, {}).setdefault(split, {})[h] = cell
        return out

    def video_means(self, names: Sequence[str], split: str = "all") -> dict:
        """{method: {video: {horizon: {metric: mean over the video's frames in the split}}}}."""
        keep = self.splits[split] & (self.horizon >= 0)
        n_h = len(names)
        key = (self.method[keep] * len(self.videos) + self.video[keep]) * n_h + self.horizon[keep]
        size = len(self.methods) * len(self.videos) * n_h
        means = {}
        for m, v in self.values.items():
            x, ok = v[keep], ~np.isnan(v[keep])
            count = np.bincount(key[ok], minlength=size)
            total = np.bincount(key[ok], x[ok], minlength=size)
            means[m] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        out: dict = {}
        for k in np.unique(key):
            mv, h = divmod(int(k), n_h)
            mi, vi = divmod(mv, len(self.videos))
            cell = out.setdefault(self.methods[mi], {}).setdefault(self.videos[vi], {})
            cell[names[h]] = {m: float(means[m][k]) for m in self.values}
        return out

    def shares(self, names: Sequence[str]) -> dict[str, dict[str, float | int | None]]:
        """{horizon: {"frames": n, "revisit": share, "turn": share}} over the distinct (video,
        frame) of the test set (a share is None when no frame of the horizon has the column)."""
        _, first = np.unique(self.video * (self.frame.max(initial=0) + 1) + self.frame, True)
        out: dict = {}
        for k, h in enumerate(names):
            idx = first[self.horizon[first] == k]
            if not len(idx):
                continue
            out[h] = {"frames": int(len(idx))}
            for column, (yes, no) in (
                ("revisit", ("revisit", "novel")),
                ("turn", ("turn", "forward")),
            ):
                known = self.splits[yes][idx] | self.splits[no][idx]
                n_yes = int(self.splits[yes][idx].sum())
                out[h][column] = n_yes / int(known.sum()) if known.any() else None
        return out

    def revisit_curve(self) -> list[float] | None:
        """Share of the test videos whose frame i+1 is a revisit, per frame index (None when no
        frame has a revisit label)."""
        _, first = np.unique(self.video * (self.frame.max(initial=0) + 1) + self.frame, True)
        known = self.splits["revisit"][first] | self.splits["novel"][first]
        if not known.any():
            return None
        f = self.frame[first][known] - 1
        hits = np.bincount(f, self.splits["revisit"][first][known].astype(float))
        return [float(x) for x in hits / np.maximum(np.bincount(f), 1)]


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")


def _gain(metric: str, a, b):
    """How much better ``a`` is than ``b`` (numbers or arrays): positive is better."""
    return goodness(metric, a) - goodness(metric, b)


def paired_differences(
    rows: Sequence[dict] | FrameTable,
    metrics: Sequence[str],
    names: Sequence[str],
    ends: Sequence[int],
    reference: str = "millivid",
    split: str = "all",
    fallback: bool = True,
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """How every method differs from ``reference`` (with ``fallback``, the first method when it is
    absent), paired over the videos both have: per method, horizon and metric, the mean over
    videos of (method − reference) of the per-video means over the horizon's frames in ``split``,
    its 95% interval half-width (1.96·sd/√n; NaN for one video), the share of videos where the
    method is better (ties are not) and the number of videos. ``rows``: per-frame rows (method,
    video, frame 1-based, split columns, metrics) or their ``FrameTable``.
    """
    table = rows if isinstance(rows, FrameTable) else FrameTable.from_rows(rows, metrics, ends)
    per_video = table.video_means(names, split)
    if not per_video or (reference not in per_video and not fallback):
        return {}
    ref = reference if reference in per_video else table.methods[0]
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for method, videos in per_video.items():
        shared = [v for v in videos if v in per_video.get(ref, {})]
        if method == ref or not shared:
            continue
        for h in names:
            for m in metrics:
                pairs = [
                    (videos[v][h][m], per_video[ref][v][h][m])
                    for v in shared
                    if h in videos[v] and h in per_video[ref][v]
                ]
                if pairs:
                    out.setdefault(method, {}).setdefault(h, {})[m] = _paired_cell(m, pairs)
    return out


def ci95(d: np.ndarray) -> float:
    """Half-width of the normal 95 % interval of the mean of ``d`` (1.96·sd/√n; NaN for n < 2):
    the interval every paired difference in the project carries."""
    d = np.asarray(d, dtype=np.float64)
    return float(1.96 * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")


def _paired_cell(metric: str, pairs: list[tuple[float, float]]) -> dict[str, float]:
    a, b = np.array(pairs).T
    d = a - b
    return {
        "mean": float(d.mean()),
        "ci95": ci95(d),
        "wins": float(np.mean(_gain(metric, a, b) > 0)),
        "videos": len(d),
    }


def memory_gains(
    table: FrameTable, names: Sequence[str], reference: str = "nearest-pose"
) -> dict[str, dict | str | None]:
    """How much better each method is on revisit frames, signed so that positive is better
    (higher PSNR, lower LPIPS, sharpness nearer 1): ``vs_novel`` {method: {horizon: {metric: its mean on revisit
    frames minus its mean on novel frames}}}; ``vs_reference`` the same with its revisit frames
    minus ``reference``'s on the same (video, frame) pairs (empty when ``reference`` is absent)."""
    vs_novel: dict = {}
    for method, splits in table.split_means(names).items():
        for h in names:
            rev, nov = splits.get("revisit", {}).get(h), splits.get("novel", {}).get(h)
            if rev and nov:
                vs_novel.setdefault(method, {})[h] = {
                    m: _gain(m, rev[m], nov[m]) for m in table.values
                }
    present = reference in table.methods
    return {
        "vs_novel": vs_novel,
        "vs_reference": _gain_vs_reference(table, names, reference) if present else {},
        "reference": reference if present else None,
    }


def _gain_vs_reference(table: FrameTable, names: Sequence[str], reference: str) -> dict:
    """{method: {horizon: {metric: mean over shared revisit (video, frame) of method − ref}}}."""
    key = table.video * (table.frame.max(initial=0) + 1) + table.frame
    ref = np.flatnonzero((table.method == table.methods.index(reference)) & table.splits["revisit"])
    ref = ref[np.argsort(key[ref])]
    out: dict = {}
    for i, method in enumerate(table.methods):
        mine = np.flatnonzero((table.method == i) & table.splits["revisit"])
        if method == reference or not len(mine) or not len(ref):
            continue
        pos = np.minimum(np.searchsorted(key[ref], key[mine]), len(ref) - 1)
        hit = key[ref][pos] == key[mine]
        mine, theirs = mine[hit], ref[pos[hit]]
        for k, h in enumerate(names):
            sel = table.horizon[mine] == k
            if sel.any():
                out.setdefault(method, {})[h] = {
                    m: _nanmean(_gain(m, v[mine[sel]], v[theirs[sel]]))
                    for m, v in table.values.items()
                }
    return out
