"""The per-frame rows kept in docs/results/per_frame/: one test set, every video whole, and the
means docs/RESULTS.md quotes from them."""

from pathlib import Path

import pytest

from millivid.evaluate.config import EvalConfig
from millivid.evaluate.results import results_from_csv

KEPT = sorted((Path(__file__).parents[1] / "docs/results/per_frame").glob("*.csv.gz"))
# PSNR short / medium / long as docs/RESULTS.md gives them
QUOTED = {
    "millivid-shipped": (18.58, 17.39, 16.64),
    "millivid-w384-6000": (18.43, 17.14, 16.48),
    "millivid-level-shift": (18.11, 16.92, 16.10),
    "millivid-level-shift-2": (18.63, 17.47, 16.87),
    "millivid-seed1": (18.66, 17.36, 16.67),
    "millivid-ddim50": (18.39, 17.24, 16.47),
    "fullres-w384-6000": (17.71, 14.98, 14.66),
    "framepack-memory": (16.96, 14.27, 13.64),
    "hierarchical-framepack-memory": (16.80, 13.85, 13.41),
    "mirrored-framepack-memory": (16.47, 13.50, 12.85),
}


@pytest.fixture(scope="module")
def kept():
    assert KEPT, "no kept per-frame rows in docs/results/per_frame"
    return results_from_csv(KEPT, EvalConfig())  # raises when two files disagree on a video


def test_kept_rows_are_one_test_set_of_whole_videos(kept):
    frames: dict[tuple[str, str], int] = {}
    for r in kept.rows:
        frames[r["method"], r["video"]] = frames.get((r["method"], r["video"]), 0) + 1
    assert set(kept.videos) >= set(QUOTED)
    for method, videos in kept.videos.items():
        assert len(videos) == 64, method
        assert {frames[method, v] for v in videos} == {768}, method


def test_kept_rows_give_the_quoted_means(kept):
    for method, psnr in QUOTED.items():
        got = tuple(round(kept.horizons[method][h]["psnr"], 2) for h in ("short", "medium", "long"))
        assert got == psnr, method
