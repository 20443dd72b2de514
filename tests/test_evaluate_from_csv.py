"""`millivid evaluate --from-csv`: per-frame CSVs of separate runs tabulated together."""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import replace

import numpy as np
import pytest

from millivid.cli import main


def test_from_csv_retabulates_the_same_results(evaluated_run, tmp_path):
    run_dir = evaluated_run
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


def test_per_frame_csv_is_kept_small_and_reads_back_gzipped(evaluated_run, tmp_path):
    """Per-frame values are kept to DECIMALS in the run's own results and in the CSV alike, so a
    gzipped copy of per_frame.csv (what docs/results keeps) re-tabulates to the same tables."""
    from millivid.evaluate.results import DECIMALS

    run_dir = evaluated_run
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


def test_from_csv_keeps_agreeing_rows_once_and_selects_and_renames_methods(evaluated_run, tmp_path):
    """Methods evaluated separately (separate runs) are tabulated together from their CSVs; rows
    two files both hold are kept once when they agree and refused when they differ;
    ``CSV:METHOD=NEW`` takes one method of a file under another name."""
    from millivid.evaluate.results import results_from_csv
    from millivid.presets import EVAL_PRESETS

    run_dir = evaluated_run
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


def test_from_csv_refuses_files_of_other_test_videos_with_the_same_names(evaluated_run, tmp_path):
    """Two CSVs that label a video's frames differently (revisit / turn) were evaluated on
    different videos under one name: merging them would pair unrelated frames, so it is refused,
    naming the video; ``drop_mismatched`` leaves such videos out instead."""
    from millivid.evaluate.results import results_from_csv
    from millivid.presets import EVAL_PRESETS

    run_dir = evaluated_run
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


def test_from_csv_round_trips_the_split_columns(evaluated_run, tmp_path):
    """per_frame.csv holds the revisit / turn labels of the ground truth, so re-tabulating it
    without the npz files gives the same split results; a CSV without them still reads."""
    from millivid.evaluate.results import results_from_csv
    from millivid.evaluate.splits import revisit_labels
    from millivid.presets import EVAL_PRESETS

    run_dir = evaluated_run
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
