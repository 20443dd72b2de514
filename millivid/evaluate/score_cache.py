"""Per-frame scores of one (prediction, ground truth) pair, kept beside the prediction.

A rollout set scored once need not be scored again: the trivial baselines of a run are the same
in every sweep or curve point that links them, and adding one method to a run leaves the others'
scores as they were. ``<prediction stem>.scores.json`` holds the per-frame values of the frame
metrics and the key they were computed under: both files' size and modification time, the first
frame scored, the metrics and the evaluation settings. Any difference and the pair is scored
again and the file replaced. Set metrics (FID, FVD) pool features over all videos and are never
kept. A folder that cannot be written to simply gets no cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from millivid.atomic import read_json, write_text_atomic
from millivid.evaluate.config import EvalConfig
from millivid.evaluate.results import stored

SUFFIX = ".scores.json"
# settings that change how rows are tabulated (or float rounding), not a per-frame value
_TABULATION = ("horizon_names", "horizon_ends", "references", "memory_reference", "batch_frames")


def scores_path(pred: Path) -> Path:
    return Path(pred).with_name(Path(pred).stem + SUFFIX)


def _stat(path: Path) -> list[int]:
    s = Path(path).resolve().stat()
    return [s.st_size, s.st_mtime_ns]


def score_key(
    pred: Path, gt: Path, start: int, overlap: bool, metrics: Sequence[str], cfg: EvalConfig
) -> dict:
    """What the per-frame scores of ``pred`` against ``gt`` depend on, as JSON would hold it."""
    settings = {k: v for k, v in asdict(cfg).items() if k not in _TABULATION}
    key = {
        "pred": _stat(pred),
        "gt": _stat(gt),
        "start": start,
        "overlap": overlap,
        "metrics": list(metrics),
        "settings": settings,
    }
    return json.loads(json.dumps(key))  # tuples as lists, as a read-back key has them


def load_scores(pred: Path, key: dict) -> dict[str, list[float]] | None:
    """The kept per-frame scores of ``pred`` when they were computed under ``key``, else None."""
    path = scores_path(pred)
    try:
        kept = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("key") != key:
        return None
    return kept.get("per_frame")


def save_scores(pred: Path, key: dict, per_frame: dict[str, Sequence[float]]) -> None:
    """Keep ``per_frame`` ({metric: values}) beside ``pred`` under ``key`` (atomically)."""
    values = {m: [stored(x) for x in v] for m, v in per_frame.items()}
    try:
        write_text_atomic(scores_path(pred), json.dumps({"key": key, "per_frame": values}))
    except OSError:
        pass  # a read-only folder: scored again next time
