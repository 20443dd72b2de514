"""`millivid evaluate` JSON contract, test-set outputs, and `millivid report` in headless Chromium."""

from __future__ import annotations

import csv
import json
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


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """RUN/gt + RUN/rollouts/{shifted,random} from the tiny world; 40 frames, context 8."""
    from dataclasses import replace

    from millivid.world import PRESETS, make_videos

    run = tmp_path_factory.mktemp("run")
    v = make_videos([1, 2], replace(PRESETS["tiny"], frames=40))
    rng = np.random.default_rng(0)
    for d in ("gt", "rollouts/shifted", "rollouts/random", "plans"):
        (run / d).mkdir(parents=True)
    for i in range(2):
        vid, lab = v.video[i].numpy(), v.labels[i].numpy()
        np.savez(run / "gt" / f"v{i}.npz", video=vid, labels=lab)
        np.savez(run / "rollouts/shifted" / f"v{i}.npz", video=np.roll(vid, 2, axis=2))
        np.savez(
            run / "rollouts/random" / f"v{i}.npz",
            video=rng.integers(0, 256, vid.shape, dtype=np.uint8),
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 1))
    fig.text(0.1, 0.5, "plan of shifted")
    fig.savefig(run / "plans" / "shifted.png")
    plt.close(fig)
    return run


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
    assert set(out) == {"per_frame", "horizons"}
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
    assert (
        main(
            ["evaluate", "--pred", str(tmp_path / "nokey.npz"), "--gt", str(run_dir / "gt/v0.npz")]
        )
        == 1
    )
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
            ]
        )
        == 1
    )
    assert "nonsense" in capsys.readouterr().err


def test_sets_write_csv_table_curves(run_dir, capsys):
    out = run_dir / "eval"
    assert (
        main(
            [
                "evaluate",
                "--pred-dir",
                str(run_dir / "rollouts"),
                "--gt-dir",
                str(run_dir / "gt"),
                "--start",
                "8",
                "--horizons",
                "8,16,64",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    for name in ("per_frame.csv", "table.md", "curves.png", "curves.svg", "results.json"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "per_frame.csv").open()))
    assert len(rows) == 2 * 2 * 32 and set(rows[0]) == {"method", "video", "frame", "psnr", "ssim"}
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


def _ensure_eval(run_dir: Path) -> None:
    if not (run_dir / "eval" / "table.md").is_file():
        assert (
            main(
                [
                    "evaluate",
                    "--pred-dir",
                    str(run_dir / "rollouts"),
                    "--gt-dir",
                    str(run_dir / "gt"),
                    "--start",
                    "8",
                    "--horizons",
                    "8,16,64",
                    "--out",
                    str(run_dir / "eval"),
                    "--no-progress",
                ]
            )
            == 0
        )


def test_report_html_without_browser(run_dir, tmp_path):
    """Building report.html needs no browser: check the page itself, never skipped."""
    _ensure_eval(run_dir)
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


def test_report_in_headless_chromium(run_dir, tmp_path):
    if CHROMIUM is None:
        pytest.skip(
            "headless browser check skipped: no `chromium` on PATH or at /usr/bin/chromium "
            "(apt-get install -y chromium); report.html itself is checked by "
            "test_report_html_without_browser"
        )
    _ensure_eval(run_dir)
    page = tmp_path / "report.html"
    assert main(["report", str(run_dir), "--out", str(page)]) == 0
    dom = _chromium(["--dump-dom", page.as_uri()], tmp_path).stdout
    assert 'data-videos-ready="2"' in dom, dom[-2000:]
    assert '<table class="metrics"' in dom and "shifted" in dom
    shot = tmp_path / "shot.png"
    _chromium([f"--screenshot={shot}", "--window-size=1200,1400", page.as_uri()], tmp_path)
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_set_outputs_list_only_written_curves(tmp_path):
    """No curve data -> no curves.png/svg, and none reported as written."""
    from millivid.evaluate.outputs import write_set_outputs
    from millivid.evaluate.runner import SetResults

    out = write_set_outputs(SetResults(metrics=("psnr",)), tmp_path / "empty", ("short",))
    assert out["curves"] == []
    assert not list((tmp_path / "empty").glob("curves.*"))
    for key in ("csv", "table", "json"):
        assert Path(out[key]).is_file(), key
    res = SetResults(metrics=("psnr",), curves={"m": {"psnr": [30.0, 29.0, 28.5]}})
    out = write_set_outputs(res, tmp_path / "full", ("short",))
    assert [Path(p).name for p in out["curves"]] == ["curves.png", "curves.svg"]
    assert all(Path(p).is_file() for p in out["curves"])


def test_from_csv_retabulates_the_same_results(run_dir, tmp_path):
    _ensure_eval(run_dir)
    out = tmp_path / "again"
    assert (
        main(
            [
                "evaluate",
                "--from-csv",
                str(run_dir / "eval" / "per_frame.csv"),
                "--horizons",
                "8,16,64",
                "--start",
                "8",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    before = json.loads((run_dir / "eval" / "results.json").read_text())
    after = json.loads((out / "results.json").read_text())
    assert after["videos"] == before["videos"]
    for method, horizons in before["horizons"].items():
        for h, vals in horizons.items():
            for m, v in vals.items():
                assert after["horizons"][method][h][m] == pytest.approx(v, rel=1e-9), (method, h)
    assert (out / "table.md").read_text() == (run_dir / "eval" / "table.md").read_text()
    assert (out / "paired.md").read_text() == (run_dir / "eval" / "paired.md").read_text()


def test_methods_are_compared_on_shared_videos_only(run_dir, tmp_path):
    """A method that lacks a video (an interrupted rollout) must not shift the others' averages:
    by default every method is scored on the videos all of them have."""
    from millivid.evaluate.config import PRESETS
    from millivid.evaluate.runner import evaluate_sets

    pred = tmp_path / "rollouts"
    shutil.copytree(run_dir / "rollouts", pred)
    (pred / "random" / "v1.npz").unlink()
    cfg = PRESETS["tiny"]
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


def test_from_csv_merges_files_and_refuses_duplicates(run_dir, tmp_path):
    """Methods evaluated separately (another session) are tabulated together from their CSVs."""
    _ensure_eval(run_dir)
    rows = list(csv.DictReader((run_dir / "eval" / "per_frame.csv").open()))
    parts = {}
    for method in ("shifted", "random"):
        path = tmp_path / f"{method}.csv"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(r for r in rows if r["method"] == method)
        parts[method] = path
    out = tmp_path / "merged"
    args = ["--horizons", "8,16,64", "--start", "8", "--out", str(out)]
    assert main(["evaluate", "--from-csv", *map(str, parts.values()), *args]) == 0
    merged = json.loads((out / "results.json").read_text())
    whole = json.loads((run_dir / "eval" / "results.json").read_text())
    for m, horizons in whole["horizons"].items():
        for h, vals in horizons.items():
            for k, v in vals.items():
                assert merged["horizons"][m][h][k] == pytest.approx(v, rel=1e-9), (m, h, k)
    dup = ["evaluate", "--from-csv", str(parts["shifted"]), str(parts["shifted"]), *args]
    assert main(dup) == 1
