"""Per-frame scores kept beside the predictions: a set scored again reuses them, and only them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from millivid.evaluate.config import EvalConfig
from millivid.evaluate.runner import evaluate_sets
from millivid.evaluate.score_cache import scores_path
from millivid.evaluate.suite import MetricSuite

METRICS = ("psnr", "ssim")


class CountingSuite(MetricSuite):
    """The real metrics, counting the videos they were computed on."""

    def __init__(self, cfg):
        super().__init__(cfg, "cpu")
        self.videos = 0

    def per_frame(self, metrics, pred, gt, *args, **kwargs):
        self.videos += 1
        return super().per_frame(metrics, pred, gt, *args, **kwargs)


@pytest.fixture
def run(tmp_path) -> Path:
    """gt/ and rollouts/{noisy,flat} with two 12-frame videos each (context 4)."""
    rng = np.random.default_rng(0)
    for d in ("gt", "rollouts/noisy", "rollouts/flat"):
        (tmp_path / d).mkdir(parents=True)
    for i in range(2):
        gt = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
        np.savez(tmp_path / "gt" / f"v{i}.npz", video=gt)
        noise = rng.integers(-20, 21, gt.shape)
        np.savez(
            tmp_path / "rollouts/noisy" / f"v{i}.npz",
            video=np.clip(gt + noise, 0, 255).astype(np.uint8),
        )
        np.savez(tmp_path / "rollouts/flat" / f"v{i}.npz", video=np.full_like(gt, 128))
    return tmp_path


def _score(run: Path, cfg: EvalConfig | None = None, cache: bool = True):
    cfg = cfg or EvalConfig()
    suite = CountingSuite(cfg)
    res = evaluate_sets(
        run / "rollouts", run / "gt", 4, METRICS, cfg, suite, progress=False, cache=cache
    )
    return res, suite.videos


def test_a_set_scored_again_reuses_its_scores_and_gives_the_same_rows(run):
    first, scored = _score(run)
    assert scored == 4
    assert scores_path(run / "rollouts/noisy/v0.npz") == run / "rollouts/noisy/v0.scores.json"
    assert len(list(run.glob("rollouts/*/*.scores.json"))) == 4
    again, scored = _score(run)
    assert scored == 0
    assert again.rows == first.rows
    assert len(first.rows) == 4 * 8  # 8 generated frames per video


def test_a_changed_prediction_or_setting_is_scored_again(run):
    first, _ = _score(run)
    pred = run / "rollouts/flat/v1.npz"
    np.savez(pred, video=np.full((12, 16, 16, 3), 10, dtype=np.uint8))
    stat = pred.stat()
    os.utime(pred, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # newer, whatever the clock
    again, scored = _score(run)
    assert scored == 1
    changed = [r for r in again.rows if r["method"] == "flat" and r["video"] == "v1"]
    before = [r for r in first.rows if r["method"] == "flat" and r["video"] == "v1"]
    assert [r["psnr"] for r in changed] != [r["psnr"] for r in before]
    assert [r for r in again.rows if r not in changed] == [r for r in first.rows if r not in before]
    _, scored = _score(run, EvalConfig(revisit_distance=3.0))
    assert scored == 4  # another setting that a per-frame value depends on
    _, scored = _score(run, EvalConfig(revisit_distance=3.0, horizon_ends=(2, 4, 8)))
    assert scored == 0  # how the rows are tabulated is not part of the key


def test_without_cache_nothing_is_kept_or_reused(run):
    _score(run)
    _, scored = _score(run, cache=False)
    assert scored == 4
    for f in run.glob("rollouts/*/*.scores.json"):
        f.unlink()
    _score(run, cache=False)
    assert not list(run.glob("rollouts/*/*.scores.json"))


def test_a_damaged_cache_file_is_scored_again(run):
    first, _ = _score(run)
    scores_path(run / "rollouts/noisy/v0.npz").write_text('{"key": ')
    again, scored = _score(run)
    assert scored == 1
    assert again.rows == first.rows


def test_the_cli_keeps_scores_only_when_asked(run, tmp_path):
    from millivid.cli import main

    args = ["evaluate", "--pred-dir", str(run / "rollouts"), "--gt-dir", str(run / "gt")]
    args += ["--start", "4", "--no-progress", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert not list(run.glob("rollouts/*/*.scores.json"))
    assert main([*args, "--cache", "--out", str(tmp_path / "kept")]) == 0
    assert len(list(run.glob("rollouts/*/*.scores.json"))) == 4
    plain = (tmp_path / "plain" / "per_frame.csv").read_text()
    assert (tmp_path / "kept" / "per_frame.csv").read_text() == plain
    assert main([*args, "--cache", "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "per_frame.csv").read_text() == plain
