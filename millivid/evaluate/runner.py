"""Evaluate one generated video or whole test sets against ground truth, by horizon.

``evaluate_pair`` is the ``millivid evaluate --pred --gt`` JSON contract; ``evaluate_sets``
walks ``--pred-dir`` (one sub-folder per method, or the .npz files of one method) and
``--gt-dir``, matching files by name, and returns per-frame and per-horizon results
(``millivid.evaluate.results``) that ``millivid.evaluate.outputs`` turns into the CSV, the
Table-1 markdown and the curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from millivid.data.videos import load_arrays, read_header
from millivid.evaluate.config import EvalConfig
from millivid.evaluate.frechet import GaussianStats, frechet_from_stats
from millivid.evaluate.horizons import FrameTable, horizon_means, horizon_ranges
from millivid.evaluate.results import (
    SetResults,
    json_safe,
    results_from_csv,
    shared_videos,
    stored,
    summarize_rows,
)
from millivid.evaluate.score_cache import load_scores, save_scores, score_key
from millivid.evaluate.splits import ACTION_METRICS, SPLIT_COLUMNS, frame_splits
from millivid.evaluate.suite import FRAME_METRICS, SET_METRICS, MetricSuite


def read_array(path: Path, key: str, required: bool = True) -> np.ndarray | None:
    """One array of an .npz video file; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file {path} does not exist")
    if not required and key not in read_header(path):
        return None
    return load_arrays(path, [key])[key]


def read_frames(path: Path) -> torch.Tensor:
    """The ``video`` array of an .npz file as uint8 [T, H, W, 3]."""
    video = read_array(path, "video")
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(
            f"{path}: 'video' must be uint8 [T,H,W,3], got {video.dtype} {video.shape}"
        )
    return torch.from_numpy(video)


def _generated(
    pred: torch.Tensor, gt: torch.Tensor, start: int, paths: tuple[Path, Path], overlap: bool
) -> int:
    """The end T of the generated frames [start, T) to score; checks shapes, and that both
    videos have the same length unless ``overlap`` (then the frames both have)."""
    where = f"{paths[0]} vs {paths[1]}"
    if pred.shape[1:] != gt.shape[1:]:
        raise ValueError(
            f"{where}: frame shape {tuple(pred.shape[1:])} != GT {tuple(gt.shape[1:])}"
        )
    if pred.shape[0] != gt.shape[0] and not overlap:
        raise ValueError(
            f"{paths[0]} has {pred.shape[0]} frames, the ground truth {paths[1]} "
            f"{gt.shape[0]}: generate as many frames as the ground truth has, or pass --overlap "
            "to score only the frames both have"
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
    overlap: bool = False,
) -> dict:
    """Compare frames [start, T) of ``video`` in two files (of the same length T; ``overlap``:
    T is the shorter one's length).

    Returns ``{"per_frame": {metric: [T - start]}, "horizons": {name: {metric: mean}}, "splits":
    {...}}``; FID/FVD appear only in ``horizons`` (pooled over that horizon's frames of this one
    video). ``splits`` (from the GT ``poses`` and ``actions`` when present): ``frames``
    {"revisit"/"turn": [T - start] of 0/1, or None}, ``horizons`` {split: {name: {metric:
    mean}}} and ``share`` {name: {"frames", "revisit", "turn"}}.
    """
    suite = suite or MetricSuite(cfg)
    suite.load_all(metrics)
    truth = _GroundTruth.read(gt_path, cfg, start)
    pred, gt = read_frames(pred_path), truth.frames
    stop = _generated(pred, gt, start, (pred_path, gt_path), overlap)
    per_frame = _per_frame(suite, metrics, pred, truth, start, stop)
    horizons = horizon_means(per_frame, cfg.horizon_names, cfg.horizon_ends)
    acc: dict[str, _SetAccumulator] = {}
    _add_set_features(suite, metrics, acc, pred[start:stop], gt[start:stop], cfg)
    _merge_set_metrics(horizons, acc)
    rows = _rows("pred", gt_path.stem, per_frame, truth, stop - start)
    table = FrameTable.from_rows(rows, list(per_frame), cfg.horizon_ends)
    splits = {
        "frames": {c: truth.column(c, stop - start) for c in SPLIT_COLUMNS},
        "horizons": table.split_means(cfg.horizon_names).get("pred", {}),
        "share": table.shares(cfg.horizon_names),
    }
    return {"per_frame": per_frame, "horizons": horizons, "splits": splits}


@dataclass
class _GroundTruth:
    """A GT video's frames uint8 [T, H, W, 3], optional labels [T, H, W] and actions int64 [T],
    and the split columns of its frames [start, T) (``splits.frame_splits``)."""

    path: Path
    frames: torch.Tensor
    labels: torch.Tensor | None
    actions: np.ndarray | None
    splits: dict[str, np.ndarray | None]

    @classmethod
    def read(cls, path: Path, cfg: EvalConfig, start: int) -> _GroundTruth:
        frames = read_frames(path)
        labels = read_array(path, "labels", required=False)
        actions = read_array(path, "actions", required=False)
        poses = read_array(path, "poses", required=False)
        n = frames.shape[0]
        splits = frame_splits(poses, actions, start, n, cfg.revisit_distance, cfg.revisit_yaw)
        lab = None if labels is None else torch.from_numpy(labels)
        return cls(path, frames, lab, actions, splits)

    def column(self, name: str, n: int) -> list[int] | None:
        """Split column ``name`` of the first ``n`` compared frames as 0/1, or None."""
        col = self.splits[name]
        return None if col is None else [int(x) for x in col[:n]]


def _per_frame(suite, metrics, pred, truth: _GroundTruth, start: int, stop: int) -> dict:
    """suite.per_frame on frames [start, stop) of pred uint8 [T, H, W, 3] and the ground truth;
    action metrics also get the GT actions of those frames and the predicted frame before the
    first one."""
    labels = None
    if any(m.startswith("probe_") for m in metrics):
        if truth.labels is None:
            raise ValueError(f"{truth.path}: probe metrics need a 'labels' array")
        labels = truth.labels[start:stop]
    extra = {}
    if any(m in ACTION_METRICS for m in metrics):
        if truth.actions is None:
            raise ValueError(f"{truth.path}: action metrics need an 'actions' array")
        if start < 1:
            raise ValueError("action metrics need --start >= 1 (a frame before the first compared)")
        extra = {"actions": torch.from_numpy(truth.actions[start:stop]), "prev": pred[start - 1]}
    return suite.per_frame(metrics, pred[start:stop], truth.frames[start:stop], labels, **extra)


def _rows(method: str, video: str, per_frame: dict, truth: _GroundTruth, n: int) -> list[dict]:
    """Per-frame rows: method, video, frame (1-based), split columns (1, 0 or None), metrics."""
    cols = {c: truth.column(c, n) for c in SPLIT_COLUMNS}
    rows = []
    for i in range(n):
        row = {"method": method, "video": video, "frame": i + 1}
        row.update({c: None if v is None else v[i] for c, v in cols.items()})
        row.update({m: stored(v[i]) for m, v in per_frame.items()})
        rows.append(row)
    return rows


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


def evaluate_sets(
    pred_dir: Path,
    gt_dir: Path,
    start: int,
    metrics: Sequence[str],
    cfg: EvalConfig,
    suite: MetricSuite | None = None,
    progress: bool = True,
    common: bool = True,
    overlap: bool = False,
    cache: bool = False,
) -> SetResults:
    """Evaluate every method's videos against the GT videos of the same file name.

    With ``common`` (the default) only the GT videos that every method has are evaluated, so the
    methods are compared on the same videos; the others are named in a warning. A prediction
    of another length than its GT is refused unless ``overlap`` (as in ``evaluate_pair``).
    ``cache``: keep each pair's per-frame scores beside its prediction and reuse the ones kept
    there under the same files and settings (``millivid.evaluate.score_cache``; not with FID or
    FVD, which pool every video's features).
    """
    suite = suite or MetricSuite(cfg)
    suite.load_all(metrics)
    cache = cache and not any(m in SET_METRICS for m in metrics)
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
    truth: _GroundTruth | None = None
    frames_done = 0
    for gt_path, method, pred_path in bar:
        if truth is None or truth.path != gt_path:
            truth = _GroundTruth.read(gt_path, cfg, start)
        key = score_key(pred_path, gt_path, start, overlap, metrics, cfg) if cache else None
        per_frame = load_scores(pred_path, key) if key else None
        if per_frame is None:
            pred, gt = read_frames(pred_path), truth.frames
            stop = _generated(pred, gt, start, (pred_path, gt_path), overlap)
            per_frame = _per_frame(suite, metrics, pred, truth, start, stop)
            _add_set_features(suite, metrics, acc[method], pred[start:stop], gt[start:stop], cfg)
            if key:
                save_scores(pred_path, key, per_frame)
        n = len(next(iter(per_frame.values())))
        res.rows += _rows(method, gt_path.stem, per_frame, truth, n)
        frames_done += n
        bar.set_postfix(frames=frames_done, refresh=False)  # shown at the next update
    summarize_rows(res, cfg)
    for method in res.horizons:
        _merge_set_metrics(res.horizons[method], acc[method])
    return res


__all__ = [
    "FRAME_METRICS",
    "SetResults",
    "evaluate_pair",
    "evaluate_sets",
    "find_methods",
    "json_safe",
    "results_from_csv",
    "shared_videos",
    "summarize_rows",
]
