"""Per-frame rows -> results of a test set: ``SetResults`` and the one place that turns rows into
curves, horizon means, split means, paired differences and memory gains (``summarize_rows``),
whether the rows were just computed (``runner.evaluate_sets``) or read back from per_frame.csv
files (``results_from_csv``)."""

from __future__ import annotations

import csv
import gzip
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from millivid.atomic import read_json
from millivid.evaluate.config import EvalConfig
from millivid.evaluate.horizons import (
    FrameTable,
    horizon_means,
    memory_gains,
    paired_differences,
)
from millivid.evaluate.splits import SPLIT_COLUMNS

KEY_COLUMNS = ("method", "video", "frame")
# per-frame metric values are kept to this many decimals (1e-4 dB of PSNR, 1e-4 of SSIM), in
# memory and in per_frame.csv alike, so that a table made from the CSV is the table of the run
# and the files stay small enough to keep (gzipped, about 0.7 MB per method and 64 videos)
DECIMALS = 4


def stored(value: float) -> float:
    """A per-frame metric value as the rows and per_frame.csv hold it (NaN stays NaN)."""
    return round(float(value), DECIMALS) if math.isfinite(value) else float(value)


@dataclass
class SetResults:
    """Results of ``evaluate_sets``: rows per (method, video, frame), curves, horizons, splits."""

    metrics: tuple[str, ...]
    # method, video, frame (1-based), split columns revisit / turn (1, 0 or None), metrics...
    rows: list[dict] = field(default_factory=list)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # method->metric->[T]
    horizons: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # method->h->m
    videos: dict[str, list[str]] = field(default_factory=dict)  # method -> evaluated video names
    paired: dict = field(default_factory=dict)  # method -> h -> metric -> paired_differences cell
    references: tuple[str, ...] = ()  # the methods paired_splits compares with (first: paired)
    paired_splits: dict = field(default_factory=dict)  # reference -> split -> method -> h -> m
    splits: dict = field(default_factory=dict)  # method -> split -> h -> m (pooled frames)
    shares: dict = field(default_factory=dict)  # h -> frames, revisit and turn shares
    memory: dict = field(default_factory=dict)  # horizons.memory_gains
    revisit_curve: list[float] | None = None  # share of videos revisiting, per frame index
    thresholds: dict = field(default_factory=dict)  # revisit_distance, revisit_yaw


def summarize_rows(res: SetResults, cfg: EvalConfig) -> None:
    """Fill ``res.videos``, ``res.curves`` (per-frame means over videos), ``res.horizons`` and
    the split results from ``res.rows``: the one place where per-frame values become curves,
    Table 1 cells, split tables and paired differences."""
    keys = KEY_COLUMNS + SPLIT_COLUMNS
    for method in dict.fromkeys(r["method"] for r in res.rows):
        rows = [r for r in res.rows if r["method"] == method]
        res.videos[method] = list(dict.fromkeys(r["video"] for r in rows))
        frame = np.array([r["frame"] for r in rows], dtype=np.int64) - 1
        count = np.bincount(frame)
        res.curves[method] = {  # NaN at a frame no video has (e.g. a CSV of some frames only)
            m: [
                float(x)
                for x in np.where(
                    count > 0,
                    np.bincount(frame, [float(r[m]) for r in rows]) / np.maximum(count, 1),
                    np.nan,
                )
            ]
            for m in rows[0]
            if m not in keys
        }
        res.horizons[method] = horizon_means(
            res.curves[method], cfg.horizon_names, cfg.horizon_ends
        )
    frame_metrics = [m for m in (res.rows[0] if res.rows else ()) if m not in keys]
    _summarize_splits(res, cfg, FrameTable.from_rows(res.rows, frame_metrics, cfg.horizon_ends))


def _summarize_splits(res: SetResults, cfg: EvalConfig, table: FrameTable) -> None:
    """Paired differences per reference and split, split means, shares and memory gains."""
    names, ends = cfg.horizon_names, cfg.horizon_ends
    metrics = list(table.values)
    first = cfg.references[0] if cfg.references else "millivid"
    first = first if first in table.methods else (table.methods or [first])[0]
    res.references = tuple(r for r in dict.fromkeys([first, *cfg.references]) if r in table.methods)
    res.paired_splits = {
        ref: {
            s: paired_differences(table, metrics, names, ends, ref, s, fallback=False)
            for s in table.present_splits()
        }
        for ref in res.references
    }
    res.paired = res.paired_splits[first]["all"] if res.references else {}
    res.splits = table.split_means(names)
    res.shares = table.shares(names)
    res.memory = memory_gains(table, names, cfg.memory_reference)
    res.revisit_curve = table.revisit_curve()
    res.thresholds = {"revisit_distance": cfg.revisit_distance, "revisit_yaw": cfg.revisit_yaw}


def results_from_csv(
    paths: str | Path | Sequence[str | Path],
    cfg: EvalConfig,
    common: bool = True,
    drop_mismatched: bool = False,
) -> SetResults:
    """Re-tabulate ``per_frame.csv`` files written by ``write_set_outputs`` (no metric is
    recomputed; set metrics such as FID/FVD are not in the CSV). Several files (e.g. methods
    evaluated in different runs on the same test set) are merged: the metrics they all have.
    Each entry is a file, or ``FILE:METHOD[=NEW],...`` to take only those methods from it, each
    renamed to NEW where given (e.g. the same variant trained for longer in another run). A
    (method, video) pair in several files must have the same rows in each (the trivial
    baselines of runs on one test set do; they are kept once); otherwise a ValueError names the
    files. Files that label a video's frames differently (revisit / turn columns) hold
    different videos under one name: a ValueError names them, or with ``drop_mismatched`` a
    warning does and they are left out. ``common``: as in ``evaluate_sets``."""
    specs = [paths] if isinstance(paths, str | Path) else list(paths)
    paths, tables = [], []
    for spec in specs:
        path, names = csv_spec(spec)
        metrics, rows = _read_per_frame_csv(path)
        paths.append(path)
        tables.append((metrics, _select_methods(path, rows, names)))
    mismatched = _mismatched_videos(paths, [rows for _, rows in tables])
    if mismatched and not drop_mismatched:
        raise ValueError(
            _mismatched_message(mismatched) + " (--drop-mismatched leaves these videos out)"
        )
    if mismatched:
        warnings.warn(_mismatched_message(mismatched) + "; left out", stacklevel=2)
        tables = [
            (metrics, [r for r in rows if r["video"] not in mismatched]) for metrics, rows in tables
        ]
    metrics = tuple(m for m in tables[0][0] if all(m in t[0] for t in tables))
    columns = (*KEY_COLUMNS, *SPLIT_COLUMNS, *metrics)
    rows, origin = [], {}
    for path, (_, file_rows) in zip(paths, tables):
        for key, (pair_rows, values) in _rows_by_pair(file_rows, columns).items():
            if key not in origin:
                origin[key] = (path, values)
                rows += pair_rows
            elif origin[key][1] != values:
                raise ValueError(
                    f"method {key[0]!r}, video {key[1]!r} is in {origin[key][0]} and {path} with "
                    "different values: take it from one file (FILE:METHOD,...) or rename it in "
                    "one (FILE:METHOD=NEW)"
                )
    if common:
        by_method: dict[str, set[str]] = {}
        for r in rows:
            by_method.setdefault(r["method"], set()).add(r["video"])
        shared = shared_videos(by_method, ", ".join(map(str, paths)))
        rows = [r for r in rows if r["video"] in shared]
    res = SetResults(metrics=metrics, rows=rows)
    summarize_rows(res, cfg)
    res.thresholds = _csv_thresholds(paths) or res.thresholds
    return res


def csv_spec(spec: str | Path) -> tuple[Path, dict[str, str] | None]:
    """``FILE`` -> (FILE, None); ``FILE:METHOD[=NEW],...`` -> (FILE, {METHOD: NEW or METHOD})."""
    if Path(spec).exists() or ":" not in str(spec):
        return Path(spec), None
    head, _, selection = str(spec).rpartition(":")
    names = {}
    for item in selection.split(","):
        old, _, new = (part.strip() for part in item.partition("="))
        if not old:
            raise ValueError(f"{spec}: an empty method name in the selection after ':'")
        names[old] = new or old
    return Path(head), names


def _select_methods(path: Path, rows: list[dict], names: dict[str, str] | None) -> list[dict]:
    """The rows of the methods in ``names`` (all with None), renamed; a ValueError names a
    method the file does not have."""
    if names is None:
        return rows
    have = list(dict.fromkeys(r["method"] for r in rows))
    missing = [m for m in names if m not in have]
    if missing:
        raise ValueError(f"{path}: no method {', '.join(missing)} (it has {', '.join(have)})")
    return [r | {"method": names[r["method"]]} for r in rows if r["method"] in names]


def _rows_by_pair(rows: list[dict], columns: Sequence[str]) -> dict[tuple[str, str], tuple]:
    """(method, video) -> (that pair's rows restricted to ``columns``, in frame order; their
    values as tuples, NaN as None, so that equal rows compare equal)."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        out.setdefault((r["method"], r["video"]), []).append({c: r.get(c) for c in columns})
    pairs = {}
    for key, pair in out.items():
        pair.sort(key=lambda r: r["frame"])
        values = [tuple(None if v != v else v for v in r.values()) for r in pair]  # v != v: NaN
        pairs[key] = (pair, values)
    return pairs


def _mismatched_videos(paths: Sequence[Path], tables: Sequence[list[dict]]) -> dict[str, tuple]:
    """Videos whose frames two files label differently (video -> the two files); rows without
    labels (CSVs written before the split columns) are not compared."""
    seen: dict[tuple[str, int], tuple[tuple, Path]] = {}
    out: dict[str, tuple] = {}
    for path, rows in zip(paths, tables, strict=True):
        for r in rows:
            labels = tuple(r[c] for c in SPLIT_COLUMNS)
            if all(x is None for x in labels):
                continue
            first = seen.setdefault((r["video"], r["frame"]), (labels, path))
            if first[0] != labels and r["video"] not in out:
                out[r["video"]] = (first[1], path)
    return out


def _mismatched_message(mismatched: dict[str, tuple]) -> str:
    """One line naming the videos that differ between files and what to do."""
    pairs: dict[tuple, list[str]] = {}
    for video, files in sorted(mismatched.items()):
        pairs.setdefault(files, []).append(video)
    where = "; ".join(
        f"{a} and {b} on {len(v)} videos ({', '.join(v[:8])}{', ...' if len(v) > 8 else ''})"
        for (a, b), v in pairs.items()
    )
    return (
        f"the revisit / turn labels differ between {where}: they were evaluated on different "
        "test videos with the same names; merge CSVs of one test set"
    )


def _csv_thresholds(paths: Sequence[Path]) -> dict | None:
    """The revisit thresholds the CSVs' split columns were made with, from the results.json
    written beside them (None when there is none)."""
    for path in paths:
        summary = path.with_name("results.json")
        if summary.is_file():
            found = read_json(summary).get("splits", {}).get("thresholds")
            if found:
                return found
    return None


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
    """(metric columns, rows) of one per_frame.csv (or per_frame.csv.gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        reader = csv.DictReader(f)
        missing = set(KEY_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{path}: not a per-frame CSV (no column {', '.join(sorted(missing))})"
            )
        metrics = tuple(c for c in reader.fieldnames if c not in KEY_COLUMNS + SPLIT_COLUMNS)
        rows = [
            {"method": r["method"], "video": r["video"], "frame": int(r["frame"])}
            | {c: int(r[c]) if r.get(c) else None for c in SPLIT_COLUMNS}
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
