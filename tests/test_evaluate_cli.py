"""`millivid evaluate` JSON contract, test-set outputs, and `millivid report` in headless Chromium."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from millivid.cli import main

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
SKIP_BROWSER = os.environ.get("MILLIVID_SKIP_BROWSER") == "1"


def test_single_pair_json_contract(run_dir, capsys):
    gt, pred = run_dir / "gt/v0.npz", run_dir / "rollouts/shifted/v0.npz"
    code = main(
        [
            "evaluate",
            "--pred",
            str(pred),
            "--gt",
            str(gt),
            "--start",
            "8",
            "--metrics",
            "psnr,ssim",
            "--json",
            "--horizons",
            "8,16,64",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"per_frame", "horizons", "splits"}
    assert set(out["per_frame"]) == {"psnr", "ssim"} and len(out["per_frame"]["psnr"]) == 32
    assert list(out["horizons"]) == ["short", "medium", "long"]
    a, b = np.load(pred)["video"], np.load(gt)["video"]
    assert out["per_frame"]["psnr"][0] == pytest.approx(
        peak_signal_noise_ratio(b[8], a[8], data_range=255), abs=1e-3
    )
    assert out["horizons"]["short"]["psnr"] == pytest.approx(np.mean(out["per_frame"]["psnr"][:8]))
    assert out["horizons"]["long"]["ssim"] == pytest.approx(np.mean(out["per_frame"]["ssim"][16:]))


def test_paper_horizons_omit_unreached(run_dir, capsys):
    gt = run_dir / "gt/v0.npz"
    assert main(["evaluate", "--pred", str(gt), "--gt", str(gt), "--start", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["horizons"]) == ["short"]  # 40 frames never reach frame 65
    assert out["horizons"]["short"]["psnr"] == 100.0 and out["horizons"]["short"][
        "ssim"
    ] == pytest.approx(1.0)


def test_bad_inputs_name_the_file(run_dir, tmp_path, capsys):
    missing = tmp_path / "missing.npz"
    assert main(["evaluate", "--pred", str(missing), "--gt", str(run_dir / "gt/v0.npz")]) == 1
    assert str(missing) in capsys.readouterr().err
    np.savez(tmp_path / "nokey.npz", frames=np.zeros((2, 16, 16, 3), np.uint8))
    nokey = ["--pred", str(tmp_path / "nokey.npz"), "--gt", str(run_dir / "gt/v0.npz")]
    assert main(["evaluate", *nokey, "--start", "0"]) == 1
    err = capsys.readouterr().err
    assert "nokey.npz" in err and "'video'" in err
    assert (
        main(
            [
                "evaluate",
                "--pred",
                str(run_dir / "gt/v0.npz"),
                "--gt",
                str(run_dir / "gt/v0.npz"),
                "--metrics",
                "psnr,nonsense",
                "--start",
                "0",
            ]
        )
        == 1
    )
    assert "nonsense" in capsys.readouterr().err


def test_start_comes_from_generate_json_or_is_required(run_dir, tmp_path, capsys):
    pred, gt = tmp_path / "pred.npz", run_dir / "gt/v0.npz"
    with np.load(gt) as f:
        np.savez(pred, video=f["video"])
    args = ["evaluate", "--pred", str(pred), "--gt", str(gt), "--json"]
    assert main(args) == 1  # scoring from frame 0 would count the context as generated
    assert "give --start" in capsys.readouterr().err
    (tmp_path / "pred.json").write_text(json.dumps({"context": 8}))
    assert main(args) == 0
    from_json = json.loads(capsys.readouterr().out)
    assert main([*args, "--start", "8"]) == 0
    assert json.loads(capsys.readouterr().out) == from_json
    assert main([*args, "--start", "-1"]) == 1
    assert "--start -1" in capsys.readouterr().err


def test_sets_write_csv_table_curves(evaluated_run):
    out = evaluated_run / "eval"
    for name in ("per_frame.csv", "table.md", "curves.png", "curves.svg", "results.json"):
        assert (out / name).is_file(), name
    assert (out / "paired.png").is_file()  # shifted − random, drawn
    rows = list(csv.DictReader((out / "per_frame.csv").open()))
    assert len(rows) == 2 * 2 * 32
    assert list(rows[0]) == ["method", "video", "frame", "revisit", "turn", "psnr", "ssim"]
    table = (out / "table.md").read_text()
    assert "| shifted | **" in table and "PSNR ↑ short" in table and "SSIM ↑ long" in table
    res = json.loads((out / "results.json").read_text())
    assert res["start"] == 8
    h = res["horizons"]
    assert h["shifted"]["short"]["psnr"] > h["random"]["short"]["psnr"]
    assert h["shifted"]["long"]["ssim"] > h["random"]["long"]["ssim"]
    # paired.md: "random" (the first method; no millivid here) is the reference
    paired = (out / "paired.md").read_text()
    assert "### shifted − random (2 videos)" in paired and "| PSNR | +" in paired
    assert res["paired"]["shifted"]["short"]["psnr"]["wins"] == 1.0


def _chromium(args, tmp_path):
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def test_report_html_without_browser(evaluated_run, tmp_path):
    """Building report.html needs no browser: check the page itself, never skipped."""
    run_dir = evaluated_run
    page = tmp_path / "report.html"
    assert main(["report", str(run_dir), "--out", str(page)]) == 0
    text = page.read_text()
    assert "src='http" not in text and 'src="http' not in text  # self-contained
    assert text.count("<canvas") == 2 * 3  # 2 test videos x (GT + 2 methods)
    assert (
        "<h2>Plans</h2>" in text and text.count("<figcaption>shifted</figcaption>") == 3
    )  # plan + 2 videos
    assert "<table class='metrics'>" in text and "data:image/png;base64," in text  # table, curves
    assert text.count("data-start='8'") == 2  # context/generated labels know the start frame
    assert "<h2>Paired differences</h2>" in text and "<h3>shifted − random (2 videos)</h3>" in text
    assert "href='#zoom-paired'" in text  # their picture, full size on a click
    # the revisit split: shares, its tables, and per video the frames marked for the slider
    assert "<table class='metrics shares'>" in text and "<td>revisit frames</td>" in text
    assert "<h3>Revisit and novel frames</h3>" in text and "Green bands" in text
    assert text.count("data-revisit='11111111" + "0" * 24 + "'") == 2  # 8 frames near the context
    assert text.count("class='strip'") == 2 and "#3a3 " in text


class ActionSuite:
    """PSNR from the real suite plus a stand-in ``action_acc`` (1 on forward frames, 0 on turns)
    that records what the runner passes for the action metric."""

    def __init__(self):
        from millivid.evaluate.suite import MetricSuite
        from millivid.presets import EVAL_PRESETS

        self.real, self.calls = MetricSuite(EVAL_PRESETS["tiny"], "cpu"), []

    def load_all(self, metrics):
        pass

    def per_frame(self, metrics, pred, gt, labels=None, actions=None, prev=None):
        self.calls.append((pred, actions, prev))
        out = self.real.per_frame([m for m in metrics if m != "action_acc"], pred, gt, labels)
        out["action_acc"] = [float(a == 0) for a in actions.tolist()]
        return out


@pytest.fixture(scope="module")
def action_run(run_dir, tmp_path_factory):
    """The run of ``run_dir`` plus the nearest-pose baseline, evaluated with psnr and the
    stand-in action_acc into RUN/eval."""
    from millivid.evaluate.baselines import write_baselines
    from millivid.evaluate.outputs import write_set_outputs
    from millivid.evaluate.runner import evaluate_sets
    from millivid.presets import EVAL_PRESETS

    run = tmp_path_factory.mktemp("action_run")
    for d in ("gt", "plans", "rollouts/shifted", "rollouts/random"):
        (run / d).parent.mkdir(exist_ok=True)
        (run / d).symlink_to(run_dir / d, target_is_directory=True)
    cfg = EVAL_PRESETS["tiny"]
    write_baselines(run / "gt", run / "rollouts" / "nearest-pose", ["nearest-pose"], 8, cfg)
    suite = ActionSuite()
    res = evaluate_sets(run / "rollouts", run / "gt", 8, ("psnr", "action_acc"), cfg, suite, False)
    write_set_outputs(res, run / "eval", cfg.horizon_names, start=8)
    return run, suite


def test_action_metrics_get_gt_actions_and_the_frame_before(action_run):
    """action_acc reads (pred[t-1], pred[t]): the runner passes the GT actions of the compared
    frames and the last context frame of the prediction; results split turn / forward."""
    run, suite = action_run
    gt = np.load(run / "gt/v0.npz")
    shifted = np.load(run / "rollouts/shifted/v0.npz")["video"]
    calls = [c for c in suite.calls if (c[0].numpy() == shifted[8:]).all()]
    assert len(calls) == 1
    _, actions, prev = calls[0]
    assert actions.tolist() == gt["actions"][8:].tolist()
    assert (prev.numpy() == shifted[7]).all()
    res = json.loads((run / "eval" / "results.json").read_text())
    splits = res["splits"]["horizons"]["shifted"]
    assert splits["turn"]["medium"]["action_acc"] == 0.0  # v0 turns at frames 26-31
    assert splits["forward"]["medium"]["action_acc"] == 1.0
    table = (run / "eval" / "table.md").read_text()
    assert "## Actions on turn and forward frames" in table
    assert "Action acc. ↑ med. turn" in table and "Action acc. ↑ med. fwd." in table
    assert "| Action acc. · turn |" in (run / "eval" / "paired.md").read_text()


def test_report_in_headless_chromium(action_run, tmp_path):
    """The page in a real browser: every video wired, the split tables and the revisit strips
    drawn (green pixels in the screenshot). Needs `chromium`; MILLIVID_SKIP_BROWSER=1 skips."""
    if SKIP_BROWSER:
        pytest.skip("MILLIVID_SKIP_BROWSER=1: headless browser check skipped on request")
    if CHROMIUM is None:
        pytest.fail(
            "no `chromium` on PATH or at /usr/bin/chromium: install it (Debian: apt-get install "
            "-y chromium; .ci/run does) or set MILLIVID_SKIP_BROWSER=1 to skip this check"
        )
    from PIL import Image

    run, _ = action_run
    page = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(page)]) == 0
    dom = _chromium(["--dump-dom", page.as_uri()], tmp_path).stdout
    assert 'data-videos-ready="2"' in dom, dom[-2000:]
    assert '<table class="metrics"' in dom and "shifted" in dom
    for text in ("Revisit and novel frames", "Memory gain", "Actions on turn and forward frames"):
        assert f"<h3>{text}</h3>" in dom, text
    assert "revisit frames" in dom and "Action acc." in dom
    shot = tmp_path / "shot.png"
    args = [f"--screenshot={shot}", "--window-size=1200,3600", "--force-color-profile=srgb"]
    _chromium([*args, page.as_uri()], tmp_path)
    assert shot.is_file() and shot.stat().st_size > 10_000
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    strip_green = (np.abs(rgb - [0x33, 0xAA, 0x33]).max(-1) <= 3).sum()
    assert strip_green >= 50, "no revisit strip (#3a3) visible in the screenshot"


def test_methods_are_compared_on_shared_videos_only(run_dir, tmp_path):
    """A method that lacks a video (an interrupted rollout) must not shift the others' averages:
    by default every method is scored on the videos all of them have."""
    from millivid.evaluate.runner import evaluate_sets
    from millivid.presets import EVAL_PRESETS

    pred = tmp_path / "rollouts"
    shutil.copytree(run_dir / "rollouts", pred)
    (pred / "random" / "v1.npz").unlink()
    cfg = EVAL_PRESETS["tiny"]
    with pytest.warns(UserWarning, match="not every method"):
        res = evaluate_sets(pred, run_dir / "gt", 8, ["psnr"], cfg, progress=False)
    assert res.videos == {"shifted": ["v0"], "random": ["v0"]}
    alone = tmp_path / "alone" / "shifted"
    alone.mkdir(parents=True)
    shutil.copy(pred / "shifted" / "v0.npz", alone)
    v0 = evaluate_sets(alone, run_dir / "gt", 8, ["psnr"], cfg, progress=False)
    assert res.horizons["shifted"] == v0.horizons["shifted"]
    both = evaluate_sets(pred, run_dir / "gt", 8, ["psnr"], cfg, progress=False, common=False)
    assert both.videos == {"shifted": ["v0", "v1"], "random": ["v0"]}
    assert both.horizons["shifted"] != v0.horizons["shifted"]


def test_a_prediction_of_another_length_is_refused_unless_overlap_is_asked(run_dir, capsys):
    short = run_dir / "short"
    short.mkdir()
    with np.load(run_dir / "rollouts" / "shifted" / "v0.npz") as f:
        np.savez(short / "v0.npz", video=f["video"][:20])  # 12 of 32 generated frames
    args = ["evaluate", "--pred", str(short / "v0.npz"), "--gt", str(run_dir / "gt" / "v0.npz")]
    assert main([*args, "--start", "8", "--json"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{short / 'v0.npz'} has 20 frames, the ground truth" in err and " 40: " in err
    assert "--overlap" in err
    assert main([*args, "--start", "8", "--json", "--overlap"]) == 0
    per_frame = json.loads(capsys.readouterr().out)["per_frame"]
    assert len(per_frame["psnr"]) == 12
    sets = ["evaluate", "--pred-dir", str(short), "--gt-dir", str(run_dir / "gt"), "--start", "8"]
    assert main([*sets, "--no-progress", "--out", str(run_dir / "short-eval")]) == 1
    assert "--overlap" in capsys.readouterr().err
