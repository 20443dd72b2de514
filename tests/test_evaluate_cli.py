"""`millivid evaluate` JSON contract, test-set outputs, and `millivid report` in headless Chromium."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from millivid.cli import main

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
SKIP_BROWSER = os.environ.get("MILLIVID_SKIP_BROWSER") == "1"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """RUN/gt + RUN/rollouts/{shifted,random} from the tiny world; 40 frames, context 8."""
    from millivid.presets import PRESETS
    from millivid.world import make_videos

    run = tmp_path_factory.mktemp("run")
    v = make_videos([1, 2], replace(PRESETS["tiny"].world, frames=40))
    rng = np.random.default_rng(0)
    for d in ("gt", "rollouts/shifted", "rollouts/random", "plans"):
        (run / d).mkdir(parents=True)
    for i in range(2):
        vid, lab = v.video[i].numpy(), v.labels[i].numpy()
        np.savez(
            run / "gt" / f"v{i}.npz",
            video=vid,
            labels=lab,
            actions=v.actions[i].numpy(),
            poses=v.poses[i].numpy(),
        )
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


def test_set_outputs_plot_the_paired_differences_of_generated_methods(tmp_path):
    """paired.png/svg: the generated methods' differences from the first reference, per horizon
    (labelled by its frames); none when only trivial baselines are paired with it."""
    from millivid.evaluate.outputs import horizon_labels, plot_paired, write_set_outputs
    from millivid.evaluate.runner import SetResults

    assert horizon_labels(("a", "b", "c"), (1, 64, 768)) == {"a": "1", "b": "2–64", "c": "65–768"}
    assert horizon_labels(("short",), None) == {"short": "short"}
    cell = {"mean": 0.2, "ci95": 0.1, "wins": 0.6, "videos": 4}
    paired = {"copy-last": {"short": {"psnr": cell}}, "b": {"short": {"psnr": cell}}}
    res = SetResults(
        metrics=("psnr",),
        curves={"a": {"psnr": [30.0, 29.0]}, "b": {"psnr": [29.0, 28.0]}},
        references=("a",),
        paired=paired,
        paired_splits={"a": {"all": paired}},
    )
    out = write_set_outputs(res, tmp_path / "o", ("short",), horizon_ends=(64,))
    names = [Path(p).name for p in out["curves"]]
    assert names == ["curves.png", "curves.svg", "paired.png", "paired.svg"]
    assert (tmp_path / "o" / "paired.png").stat().st_size > 5_000
    del paired["b"]
    assert plot_paired(paired, "a", ("psnr",), {"short": "1–64"}, tmp_path / "none") == []
    assert not list(tmp_path.glob("none.*"))
    # evaluated again into the same folder: the figures and tables it no longer has are gone
    write_set_outputs(res, tmp_path / "o", ("short",))  # paired.md, but no generated method
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "curves.png",
        "curves.svg",
        "paired.md",
        "per_frame.csv",
        "results.json",
        "table.md",
    ]
    write_set_outputs(SetResults(metrics=("psnr",)), tmp_path / "o", ("short",))
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "per_frame.csv",
        "results.json",
        "table.md",
    ]


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


def test_per_frame_csv_is_kept_small_and_reads_back_gzipped(run_dir, tmp_path):
    """Per-frame values are kept to DECIMALS in the run's own results and in the CSV alike, so a
    gzipped copy of per_frame.csv (what docs/results keeps) re-tabulates to the same tables."""
    from millivid.evaluate.results import DECIMALS

    _ensure_eval(run_dir)
    csv_path = run_dir / "eval" / "per_frame.csv"
    rows = list(csv.DictReader(csv_path.open()))
    psnr = [r["psnr"] for r in rows]
    assert all(len(v.partition(".")[2]) <= DECIMALS for v in psnr)
    assert any(len(v.partition(".")[2]) == DECIMALS for v in psnr)  # rounded, not truncated
    packed = tmp_path / "per_frame.csv.gz"
    packed.write_bytes(gzip.compress(csv_path.read_bytes()))
    out = tmp_path / "again"
    args = ["--horizons", "8,16,64", "--start", "8", "--out", str(out)]
    assert main(["evaluate", "--from-csv", f"{packed}:shifted,random", *args]) == 0
    assert (out / "table.md").read_text() == (run_dir / "eval" / "table.md").read_text()
    assert (out / "paired.md").read_text() == (run_dir / "eval" / "paired.md").read_text()


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


def test_from_csv_keeps_agreeing_rows_once_and_selects_and_renames_methods(run_dir, tmp_path):
    """Methods evaluated separately (separate runs) are tabulated together from their CSVs; rows
    two files both hold are kept once when they agree and refused when they differ;
    ``CSV:METHOD=NEW`` takes one method of a file under another name."""
    from millivid.evaluate.results import results_from_csv
    from millivid.presets import EVAL_PRESETS

    _ensure_eval(run_dir)
    whole_csv = run_dir / "eval" / "per_frame.csv"
    rows = list(csv.DictReader(whole_csv.open()))

    def write(name, chosen):
        path = tmp_path / f"{name}.csv"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(chosen)
        return path

    parts = {m: write(m, [r for r in rows if r["method"] == m]) for m in ("shifted", "random")}
    out = tmp_path / "merged"
    args = ["--horizons", "8,16,64", "--start", "8", "--out", str(out)]
    assert main(["evaluate", "--from-csv", *map(str, parts.values()), *args]) == 0
    merged = json.loads((out / "results.json").read_text())
    whole = json.loads((run_dir / "eval" / "results.json").read_text())
    for m, horizons in whole["horizons"].items():
        for h, vals in horizons.items():
            for k, v in vals.items():
                assert merged["horizons"][m][h][k] == pytest.approx(v, rel=1e-9), (m, h, k)
    cfg = replace(EVAL_PRESETS["tiny"], horizon_ends=(8, 16, 64))
    # the whole file and one of its parts agree on "shifted": kept once
    again = results_from_csv([whole_csv, parts["shifted"]], cfg)
    assert len(again.rows) == len(rows)
    assert again.horizons == results_from_csv(whole_csv, cfg).horizons
    # the same method with other values in a second file: refused, naming both files
    other = [dict(r, psnr=str(float(r["psnr"]) + 1.0)) for r in rows if r["method"] == "shifted"]
    longer = write("shifted_longer", other)
    with pytest.raises(ValueError, match="'shifted'.*different values") as refused:
        results_from_csv([whole_csv, longer], cfg)
    assert str(longer) in str(refused.value) and str(whole_csv) in str(refused.value)
    assert main(["evaluate", "--from-csv", str(whole_csv), str(longer), *args]) == 1
    # ... and taken from it under another name: one more method, one dB above
    spec = f"{longer}:shifted=shifted-longer"
    assert main(["evaluate", "--from-csv", str(whole_csv), spec, *args]) == 0
    both = json.loads((out / "results.json").read_text())["horizons"]
    assert set(both) == {"shifted", "random", "shifted-longer"}
    for h, vals in both["shifted"].items():
        assert both["shifted-longer"][h]["psnr"] == pytest.approx(vals["psnr"] + 1.0), h
    with pytest.raises(ValueError, match="no method nope .*it has shifted"):
        results_from_csv([whole_csv, f"{longer}:nope"], cfg)


def test_from_csv_refuses_files_of_other_test_videos_with_the_same_names(run_dir, tmp_path):
    """Two CSVs that label a video's frames differently (revisit / turn) were evaluated on
    different videos under one name: merging them would pair unrelated frames, so it is refused,
    naming the video; ``drop_mismatched`` leaves such videos out instead."""
    from millivid.evaluate.results import results_from_csv
    from millivid.presets import EVAL_PRESETS

    _ensure_eval(run_dir)
    rows = list(csv.DictReader((run_dir / "eval" / "per_frame.csv").open()))
    parts = {}
    for method in ("shifted", "random"):
        path = tmp_path / f"{method}.csv"
        mine = [dict(r) for r in rows if r["method"] == method]
        if method == "random":  # another video named v1: its first frame labelled otherwise
            first = next(r for r in mine if r["video"] == "v1")
            first["revisit"] = str(1 - int(first["revisit"]))
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(mine)
        parts[method] = path
    cfg = replace(EVAL_PRESETS["tiny"], horizon_ends=(8, 16, 64))
    with pytest.raises(ValueError, match="v1") as refused:
        results_from_csv(list(parts.values()), cfg)
    assert "v0" not in str(refused.value).split("videos")[-1]
    args = ["--horizons", "8,16,64", "--start", "8", "--out", str(tmp_path / "merged")]
    assert main(["evaluate", "--from-csv", *map(str, parts.values()), *args]) == 1
    with pytest.warns(UserWarning, match="v1"):
        kept = results_from_csv(list(parts.values()), cfg, drop_mismatched=True)
    assert {r["video"] for r in kept.rows} == {"v0"}
    with pytest.warns(UserWarning, match="v1"):
        assert (
            main(["evaluate", "--from-csv", *map(str, parts.values()), *args, "--drop-mismatched"])
            == 0
        )
    assert "v1" not in (tmp_path / "merged" / "per_frame.csv").read_text()


def test_from_csv_round_trips_the_split_columns(run_dir, tmp_path):
    """per_frame.csv holds the revisit / turn labels of the ground truth, so re-tabulating it
    without the npz files gives the same split results; a CSV without them still reads."""
    from millivid.evaluate.results import results_from_csv
    from millivid.evaluate.splits import revisit_labels
    from millivid.presets import EVAL_PRESETS

    _ensure_eval(run_dir)
    rows = list(csv.DictReader((run_dir / "eval" / "per_frame.csv").open()))
    for video in ("v0", "v1"):
        gt = np.load(run_dir / "gt" / f"{video}.npz")
        expected = revisit_labels(gt["poses"], 8, 2.0, 15.0).astype(int).tolist()
        turns = [int(a in (1, 2)) for a in gt["actions"][8:]]
        for method in ("shifted", "random"):
            mine = [r for r in rows if r["video"] == video and r["method"] == method]
            assert [int(r["revisit"]) for r in mine] == expected
            assert [int(r["turn"]) for r in mine] == turns
    before = json.loads((run_dir / "eval" / "results.json").read_text())
    cfg = replace(EVAL_PRESETS["tiny"], horizon_ends=(8, 16, 64))  # the fixture's --horizons
    again = results_from_csv(run_dir / "eval" / "per_frame.csv", cfg)
    assert again.shares == before["splits"]["share"]
    assert again.thresholds == before["splits"]["thresholds"]
    for method, splits in before["splits"]["horizons"].items():
        for split, horizons in splits.items():
            for h, vals in horizons.items():
                for m, v in vals.items():
                    assert again.splits[method][split][h][m] == pytest.approx(v, rel=1e-9)
    old = tmp_path / "old.csv"  # written before the split columns existed
    with old.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["method", "video", "frame", "psnr", "ssim"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in writer.fieldnames} for r in rows)
    plain = results_from_csv(old, cfg)
    assert plain.metrics == ("psnr", "ssim") and plain.horizons == again.horizons
    assert set(plain.splits["shifted"]) == {"all"} and plain.revisit_curve is None


def test_curves_give_every_method_its_own_line_beyond_ten(tmp_path, monkeypatch):
    """Eleven methods (ten baselines and variants plus one): no two lines look alike."""
    import matplotlib.pyplot as plt

    from millivid.evaluate.outputs import plot_curves

    curves = {f"m{i}": {"psnr": [float(i), float(i) + 1]} for i in range(11)}
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)  # keep the figure to inspect its lines
    plot_curves(curves, ["psnr"], tmp_path / "curves")
    lines = kept[0].axes[0].get_lines()
    looks = {(line.get_color(), line.get_linestyle()) for line in lines}
    assert len(lines) == 11 and len(looks) == 11


def test_curves_legend_hides_no_curve(tmp_path, monkeypatch):
    """Every panel in use (three metrics, three columns): the legend of many methods goes below
    the panels, overlapping none; with a spare panel it fills that panel."""
    import matplotlib.pyplot as plt

    from millivid.evaluate.outputs import plot_curves

    curves = {
        f"m{i}": {m: [float(i)] * 4 for m in ("psnr", "ssim", "sharpness", "probe_acc")}
        for i in range(11)
    }
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)
    plot_curves(curves, ["psnr", "ssim", "sharpness"], tmp_path / "full")
    fig = kept[-1]
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    panels = [ax.get_window_extent(renderer) for ax in fig.axes]
    assert not any(box.overlaps(p) for p in panels)
    plot_curves(curves, ["psnr", "ssim", "sharpness", "probe_acc"], tmp_path / "spare")
    fig = kept[-1]
    assert not fig.legends and fig.axes[len(fig.axes) - 2].get_legend() is not None  # 1st spare


def test_from_csv_of_some_frames_only_averages_the_frames_it_has(tmp_path):
    """A CSV holding frames 300-301 only (of the long horizon, 257-768): the horizon mean is
    theirs, not diluted by the frames nobody scored, and those frames' curve values are NaN."""
    from millivid.evaluate.results import results_from_csv
    from millivid.presets import EVAL_PRESETS

    path = tmp_path / "per_frame.csv"
    rows = ["method,video,frame,revisit,turn,psnr"]
    rows += [f"A,v{v},{f},0,0,{14 + v}" for v in (0, 1) for f in (300, 301)]
    path.write_text("\n".join(rows) + "\n")
    res = results_from_csv(path, EVAL_PRESETS["mini"])
    assert res.horizons["A"]["long"]["psnr"] == pytest.approx(14.5)
    assert np.isnan(res.horizons["A"]["short"]["psnr"])
    assert np.isnan(res.curves["A"]["psnr"][0]) and res.curves["A"]["psnr"][299] == 14.5


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
