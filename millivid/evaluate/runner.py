"""Evaluate one generated video or whole test sets against ground truth, by horizon.

``evaluate_pair`` is the ``millivid evaluate --pred --gt`` JSON contract; ``evaluate_sets``
walks ``--pred-dir`` (one sub-folder per method, or the .npz files of one method) and
``--gt-dir``, matching files by name, and returns per-frame and per-horizon results that
``millivid.evaluate.outputs`` turns into the CSV, the Table-1 markdown and the curves.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from millivid.evaluate.config import EvalConfig
from millivid.evaluate.frechet import GaussianStats, frechet_from_stats
from millivid.evaluate.horizons import horizon_means, horizon_ranges, paired_differences
from millivid.evaluate.suite import FRAME_METRICS, SET_METRICS, MetricSuite


def read_array(path: Path, key: str, required: bool = True) -> np.ndarray | None:
    """One array of an .npz video file; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file {path} does not exist")
    try:
        with np.load(path) as data:
            if key not in data.files:
                if not required:
                    return None
                raise ValueError(f"{path}: no array {key!r} (has {', '.join(data.files)})")
            return data[key]
    except (OSError, ValueError) as err:
        if isinstance(err, ValueError) and str(path) in str(err):
            raise
        raise ValueError(f"cannot read video file {path}: {err}") from err


def read_frames(path: Path) -> torch.Tensor:
    """The ``video`` array of an .npz file as uint8 [T, H, W, 3]."""
    video = read_array(path, "video")
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(
            f"{path}: 'video' must be uint8 [T,H,W,3], got {video.dtype} {video.shape}"
        )
    return torch.from_numpy(video)


def _generated(pred: torch.Tensor, gt: torch.Tensor, start: int, where: str) -> int:
    """Number of generated frames [start, T) both videos have; checks shapes."""
    if pred.shape[1:] != gt.shape[1:]:
        raise ValueError(
            f"{where}: frame shape {tuple(pred.shape[1:])} != GT {tuple(gt.shape[1:])}"
        )
    stop = min(pred.shape[0], gt.shape[0])
    if not 0 <= start < stop:
        raise ValueError(f"{where}: --start {start} outside the {stop} frames of both videos")
    return stop


@dataclass
class _SetAccumulator:
    """Fréchet statistics of generated and GT features, per horizon, for one method."""

    pred: dict[str, GaussianStats] = field(default_factory=dict)
    gt: dict[str, GaussianStats] = field(default_factory=dict)

    def add(self, horizon: str, pred_feats: torch.Tensor, gt_feats: torch.Tensor) -> None:
        self.pred.setdefault(horizon, GaussianStats()).add(pred_feats.numpy())
        self.gt.setdefault(horizon, GaussianStats()).add(gt_feats.numpy())

    def distances(self) -> dict[str, float]:
        out = {}
        for h, stats in self.pred.items():
            if stats.n >= 2 and self.gt[h].n >= 2:
                out[h] = frechet_from_stats(*stats.mean_cov(), *self.gt[h].mean_cov())
        return out


def _add_set_features(suite, metrics, acc, pred, gt, cfg) -> None:
    """Pool FID/FVD features of the generated frames pred, gt [T', H, W, 3] per horizon."""
    ranges = horizon_ranges(pred.shape[0], cfg.horizon_names, cfg.horizon_ends)
    for m in metrics:
        if m not in SET_METRICS:
            continue
        for name, (a, b) in ranges.items():
            acc.setdefault(m, _SetAccumulator()).add(
                name, suite.features(m, pred[a:b]), suite.features(m, gt[a:b])
            )


def _merge_set_metrics(horizons: dict, acc: dict[str, _SetAccumulator]) -> None:
    for m, a in acc.items():
        for h, value in a.distances().items():
            horizons.setdefault(h, {})[m] = value


def evaluate_pair(
    pred_path: Path,
    gt_path: Path,
    start: int,
    metrics: Sequence[str],
    cfg: EvalConfig,
    suite: MetricSuite | None = None,
) -> dict:
    """Compare frames [start, T) of ``video`` in two files.

    Returns ``{"per_frame": {metric: [T - start]}, "horizons": {name: {metric: mean}}}``; FID/FVD
    appear only in ``horizons`` (pooled over that horizon's frames of this one video).
    """
    suite = suite or MetricSuite(cfg)
    suite.load_all(metrics)
    pred, gt = read_frames(pred_path), read_frames(gt_path)
    stop = _generated(pred, gt, start, f"{pred_path} vs {gt_path}")
    labels = None
    if any(m.startswith("probe_") for m in metrics):
        labels = torch.from_numpy(read_array(gt_path, "labels"))[start:stop]
    per_frame = suite.per_frame(metrics, pred[start:stop], gt[start:stop], labels)
    horizons = horizon_means(per_frame, cfg.horizon_names, cfg.horizon_ends)
    acc: dict[str, _SetAccumulator] = {}
    _add_set_features(suite, metrics, acc, pred[start:stop], gt[start:stop], cfg)
    _merge_set_metrics(horizons, acc)
    return {"per_frame": per_frame, "horizons": horizons}


def find_methods(pred_dir: Path) -> dict[str, Path]:
    """{method: folder}: the sub-folders of pred_dir holding .npz files, else pred_dir itself."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"prediction folder {pred_dir} does not exist")
    subs = {p.name: p for p in sorted(pred_dir.iterdir()) if p.is_dir() and any(p.glob("*.npz"))}
    if subs:
        return subs
    if any(pred_dir.glob("*.npz")):
        return {pred_dir.name: pred_dir}
    raise FileNotFoundError(f"no .npz videos in {pred_dir} or its sub-folders")


@dataclass
class SetResults:
    """Results of ``evaluate_sets``: rows per (method, video, frame), curves and horizons."""

    metrics: tuple[str, ...]
    rows: list[dict] = field(default_factory=list)  # method, video, frame (1-based), metrics...
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # method->metric->[T]
    horizons: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # method->h->m
    videos: dict[str, list[str]] = field(default_factory=dict)  # method -> evaluated video names
    paired: dict = field(default_factory=dict)  # method -> h -> metric -> paired_differences cell


def evaluate_sets(
    pred_dir: Path,
    gt_dir: Path,
    start: int,
    metrics: Sequence[str],
    cfg: EvalConfig,
    suite: MetricSuite | None = None,
    progress: bool = True,
    common: bool = True,
) -> SetResults:
    """Evaluate every method's videos against the GT videos of the same file name.

    With ``common`` (the default) only the GT videos that every method has are evaluated, so the
    methods are compared on the same videos; the others are named in a warning.
    """
    suite = suite or MetricSuite(cfg)
    suite.load_all(metrics)
    methods = find_methods(pred_dir)
    gt_files = sorted(Path(gt_dir).glob("*.npz"))
    if not gt_files:
        raise FileNotFoundError(f"no .npz ground-truth videos in {gt_dir}")
    res = SetResults(metrics=tuple(metrics))
    acc: dict[str, dict[str, _SetAccumulator]] = {m: {} for m in methods}
    have = {m: {g.stem for g in gt_files if (d / g.name).is_file()} for m, d in methods.items()}
    if not any(have.values()):
        raise FileNotFoundError(f"no prediction in {pred_dir} matches a file name in {gt_dir}")
    if common:
        shared = shared_videos(have, pred_dir)
        if not shared:
            raise FileNotFoundError(f"no video in {gt_dir} was generated by every method")
        have = {m: shared for m in have}
    pairs = [(g, m, d / g.name) for g in gt_files for m, d in methods.items() if g.stem in have[m]]
    bar = tqdm(pairs, desc="evaluate", unit="video", disable=not progress)
    gt_cache: tuple[Path, torch.Tensor, torch.Tensor | None] | None = None
    frames_done = 0
    for gt_path, method, pred_path in bar:
        if gt_cache is None or gt_cache[0] != gt_path:
            lab = read_array(gt_path, "labels", required=False)
            gt_cache = (
                gt_path,
                read_frames(gt_path),
                None if lab is None else torch.from_numpy(lab),
            )
        _, gt, labels = gt_cache
        pred = read_frames(pred_path)
        stop = _generated(pred, gt, start, f"{pred_path} vs {gt_path}")
        lab = None if labels is None else labels[start:stop]
        if lab is None and any(m.startswith("probe_") for m in metrics):
            raise ValueError(f"{gt_path}: probe metrics need a 'labels' array")
        per_frame = suite.per_frame(metrics, pred[start:stop], gt[start:stop], lab)
        _add_set_features(suite, metrics, acc[method], pred[start:stop], gt[start:stop], cfg)
        n = stop - start
        for i in range(n):
            row = {"method": method, "video": gt_path.stem, "frame": i + 1}
            row.update({m: v[i] for m, v in per_frame.items()})
            res.rows.append(row)
        frames_done += n
        bar.set_postfix(frames=frames_done)
    summarize_rows(res, cfg)
    for method in res.horizons:
        _merge_set_metrics(res.horizons[method], acc[method])
    return res


def summarize_rows(res: SetResults, cfg: EvalConfig) -> None:
    """Fill ``res.videos``, ``res.curves`` (per-frame means over videos) and ``res.horizons``
    from ``res.rows``: the one place where per-frame values become curves and Table 1 cells."""
    keys = ("method", "video", "frame")
    for method in dict.fromkeys(r["method"] for r in res.rows):
        rows = [r for r in res.rows if r["method"] == method]
        res.videos[method] = list(dict.fromkeys(r["video"] for r in rows))
        frame = np.array([r["frame"] for r in rows], dtype=np.int64) - 1
        count = np.bincount(frame)
        res.curves[method] = {
            m: [
                float(x)
                for x in np.bincount(frame, [float(r[m]) for r in rows]) / np.maximum(count, 1)
            ]
            for m in rows[0]
            if m not in keys
        }
        res.horizons[method] = horizon_means(
            res.curves[method], cfg.horizon_names, cfg.horizon_ends
        )
    frame_metrics = [m for m in (res.rows[0] if res.rows else ()) if m not in keys]
    res.paired = paired_differences(
        res.rows, frame_metrics, cfg.horizon_names, cfg.horizon_ends, cfg.reference
    )


def results_from_csv(
    paths: Path | Sequence[Path], cfg: EvalConfig, common: bool = True
) -> SetResults:
    """Re-tabulate ``per_frame.csv`` files written by ``write_set_outputs`` (no metric is
    recomputed; set metrics such as FID/FVD are not in the CSV). Several files (e.g. methods
    evaluated in different sessions on the same test set) are merged: the metrics they all have,
    and a (method, video) pair may come from one file only. ``common``: as in ``evaluate_sets``."""
    paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    tables = [_read_per_frame_csv(p) for p in paths]
    metrics = tuple(m for m in tables[0][0] if all(m in t[0] for t in tables))
    rows, origin = [], {}
    for path, (_, file_rows) in zip(paths, tables):
        for key in {(r["method"], r["video"]) for r in file_rows}:
            if key in origin:
                raise ValueError(
                    f"method {key[0]!r}, video {key[1]!r} is in {origin[key]} and {path}"
                )
            origin[key] = path
        rows += [{k: r[k] for k in ("method", "video", "frame", *metrics)} for r in file_rows]
    if common:
        by_method: dict[str, set[str]] = {}
        for r in rows:
            by_method.setdefault(r["method"], set()).add(r["video"])
        shared = shared_videos(by_method, ", ".join(map(str, paths)))
        rows = [r for r in rows if r["video"] in shared]
    res = SetResults(metrics=metrics, rows=rows)
    summarize_rows(res, cfg)
    return res


def shared_videos(videos: dict[str, set[str]], where: object) -> set[str]:
    """The videos every method has (method -> its video names); a warning names the others, so
    methods are compared on the same videos."""
    shared = set.intersection(*videos.values()) if videos else set()
    left_out = {m: sorted(v - shared) for m, v in videos.items() if v - shared}
    if left_out:
        names = "; ".join(f"{m}: {len(v)} ({', '.join(v[:8])})" for m, v in left_out.items())
        warnings.warn(
            f"{where}: not every method has these videos, left out: {names}", stacklevel=3
        )
    return shared


def _read_per_frame_csv(path: Path) -> tuple[tuple[str, ...], list[dict]]:
    """(metric columns, rows) of one per_frame.csv."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"method", "video", "frame"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{path}: not a per-frame CSV (no column {', '.join(sorted(missing))})"
            )
        metrics = tuple(c for c in reader.fieldnames if c not in ("method", "video", "frame"))
        rows = [
            {"method": r["method"], "video": r["video"], "frame": int(r["frame"])}
            | {m: float(r[m]) if r[m] else float("nan") for m in metrics}
            for r in reader
        ]
    return metrics, rows


def json_safe(value):
    """Replace NaN/inf floats (not valid JSON) with None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


__all__ = [
    "FRAME_METRICS",
    "SetResults",
    "evaluate_pair",
    "evaluate_sets",
    "find_methods",
    "results_from_csv",
    "summarize_rows",
]
