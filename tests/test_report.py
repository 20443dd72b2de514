"""`millivid report` as a user sees it: no leftover status text, plan pictures open full size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from millivid.evaluate.report import build_report
from tests.test_evaluate_cli import CHROMIUM, SKIP_BROWSER, _chromium

PLAN_RGB = (200, 0, 200)  # the stand-in plan picture: magenta, 800 x 1000 px


@pytest.fixture
def run(tmp_path):
    """RUN/gt + RUN/rollouts/copy + RUN/plans/copy.png; 12 frames of 16 px."""
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    for d in ("gt", "rollouts/copy", "plans"):
        (tmp_path / "run" / d).mkdir(parents=True)
    np.savez(tmp_path / "run/gt/v0.npz", video=video)
    np.savez(tmp_path / "run/rollouts/copy/v0.npz", video=video)
    Image.new("RGB", (800, 1000), PLAN_RGB).save(tmp_path / "run/plans/copy.png")
    return tmp_path / "run"


def test_report_has_no_status_text_and_links_plans_to_full_size(run, tmp_path):
    text = build_report(run, tmp_path / "report.html").read_text()
    assert "videos ready" not in text and "id='status'" not in text
    assert "<a class='zoom' href='#zoom-plan-0'" in text and "<div id='lightbox' hidden>" in text
    assert "Click a plan to see it full size." in text


def _magenta(shot) -> int:
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    return int((np.abs(rgb - PLAN_RGB).max(-1) <= 3).sum())


def test_plan_opens_full_size_in_headless_chromium(run, tmp_path):
    """The page as loaded shows the plan as a thumbnail and no status text; the plan's link
    (#zoom-plan-0) shows it full size over the page. Needs `chromium`; MILLIVID_SKIP_BROWSER=1
    skips."""
    if SKIP_BROWSER:
        pytest.skip("MILLIVID_SKIP_BROWSER=1: headless browser check skipped on request")
    if CHROMIUM is None:
        pytest.fail(
            "no `chromium` on PATH or at /usr/bin/chromium (Debian: apt-get install chromium)"
        )
    page = build_report(run, tmp_path / "report.html")
    dom = _chromium(["--dump-dom", page.as_uri()], tmp_path).stdout
    assert 'data-videos-ready="1"' in dom and "videos ready" not in dom, dom[-2000:]
    args = ["--window-size=1200,1000", "--force-color-profile=srgb", "--hide-scrollbars"]
    shots = {}
    for name, url in (("page", page.as_uri()), ("zoom", page.as_uri() + "#zoom-plan-0")):
        shots[name] = tmp_path / f"{name}.png"
        _chromium([f"--screenshot={shots[name]}", *args, url], tmp_path)
    thumbnail, full = _magenta(shots["page"]), _magenta(shots["zoom"])
    assert 0 < thumbnail <= 260 * 208 + 500  # max-height 260 px, aspect 0.8
    assert full >= 800 * 900  # natural size: 800 px wide, filling the window's height
