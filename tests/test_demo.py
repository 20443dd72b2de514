import json

import numpy as np

from millivid.cli import main
from millivid.data.mp4 import read_mp4
from millivid.evaluate.baselines import BASELINES
from millivid.world import TEST_SEED_OFFSET
from tests.test_generate import make_runs

SEED = TEST_SEED_OFFSET  # the demo draws its world from the test namespace


def test_demo_render_only_writes_video_npz_and_plot(tmp_path, capsys):
    args = ["demo", "--preset", "tiny", "--render-only", "--context", "8", "--frames", "8"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    npz = tmp_path / f"world_seed{SEED}.npz"
    assert str(npz) in printed
    assert (tmp_path / f"world_seed{SEED}.mp4").stat().st_size > 0
    assert (tmp_path / f"world_seed{SEED}_trajectory.png").stat().st_size > 0
    with np.load(npz) as f:
        assert f["video"].shape == (16, 32, 32, 3) and f["video"].dtype == np.uint8
        assert f["actions"].shape == (16,)


def test_demo_seed_is_the_world_seed_as_in_world_render(tmp_path, capsys):
    args = ["--preset", "tiny", "--context", "8", "--frames", "8"]
    seed = SEED + 3
    assert main(["demo", *args, "--render-only", "--seed", str(seed), "--out", str(tmp_path)]) == 0
    same = ["world", "render", "--preset", "tiny", "--frames", "16", "--seed", str(seed)]
    assert main([*same, "--out", str(tmp_path / "render")]) == 0
    with np.load(tmp_path / f"world_seed{seed}.npz") as a, np.load(tmp_path / "render.npz") as b:
        assert np.array_equal(a["video"], b["video"])
    assert main(["demo", *args, "--render-only", "--seed", "5", "--out", str(tmp_path)]) == 0
    assert "world seed 5 is a training world" in capsys.readouterr().out


def test_demo_without_the_shipped_model_says_so_and_renders(tmp_path, capsys, monkeypatch):
    import millivid.cli.demo as demo

    monkeypatch.setattr(demo, "SHIPPED", tmp_path / "stripped")  # a checkout without models
    args = ["demo", "--preset", "tiny", "--frames", "8", "--context", "8"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert f"no model at {tmp_path / 'stripped' / 'millivid'}" in printed
    assert (tmp_path / f"world_seed{SEED}.npz").exists()


def test_demo_refuses_a_missing_model_it_was_given_and_zero_frames(tmp_path, capsys):
    args = ["demo", "--preset", "tiny", "--context", "8", "--out", str(tmp_path)]
    assert main([*args, "--ckpt", str(tmp_path / "none")]) == 1
    assert f"{tmp_path / 'none'} does not exist" in capsys.readouterr().err
    for flag in ("--frames", "--steps", "--context"):
        assert main([*args, flag, "0"]) == 1
        assert f"{flag} 0: give at least 1" in capsys.readouterr().err
    assert not (tmp_path / f"world_seed{SEED}.npz").exists()  # nothing was rendered


def test_demo_rollout_refuses_a_preset_other_than_the_models(tmp_path, capsys):
    video, ae = make_runs(tmp_path)  # tiny models
    args = ["demo", "--ckpt", str(video), "--ae", str(ae), "--context", "8", "--frames", "4"]
    for extra, named in ((["--preset", "mini"], "--preset mini"), (["--set", "x.y=1"], "--set")):
        assert main([*args, *extra, "--out", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err
        assert f"{named}: a rollout uses the config the model was trained with (tiny" in err
    assert not (tmp_path / "out" / "rollouts").exists()


def test_demo_rolls_out_a_held_out_video_and_scores_it(tmp_path, capsys):
    video, ae = make_runs(tmp_path)
    args = ["demo", "--ckpt", str(video), "--ae", str(ae), "--context", "24", "--frames", "12"]
    assert main([*args, "--steps", "2", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr()
    assert "12/12 frames done" in printed.err and "frames=" not in printed.err  # progress bar
    lines = printed.out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["method"] == "millivid" and summary["seed"] == SEED
    assert 0 < summary["horizons"]["short"]["psnr"] < 60
    assert set(summary["baselines"]) == set(BASELINES)
    assert summary["baselines"]["copy-last"]["short"]["psnr"] > 0
    out = tmp_path / "out"  # a run folder: gt, rollouts, plans, eval, report
    with np.load(out / "rollouts" / "millivid" / f"seed{SEED}.npz") as f:
        assert f["video"].shape == (36, 32, 32, 3)
    with np.load(out / "rollouts" / "nearest-pose" / f"seed{SEED}.npz") as f:
        assert f["video"].shape == (36, 32, 32, 3)
    # ground truth | generated, 32 px upscaled x8, captioned, marked and counted
    assert read_mp4(out / "rollouts" / "millivid" / f"seed{SEED}.mp4").shape == (36, 324, 540, 3)
    assert (out / "plans" / "millivid.png").stat().st_size > 0
    table = (out / "eval" / "table.md").read_text()
    for method in ("millivid", *BASELINES):
        assert f"| {method} |" in table, method
    page = (out / "report.html").read_text()
    assert page.count("<canvas") == 5 and "Metrics by horizon" in page  # GT, millivid, baselines
    assert "videos ready" not in page
    assert f"report: {out / 'report.html'}" in "\n".join(lines)
    with np.load(out / "gt" / f"seed{SEED}.npz") as f:  # what the label probe needs too
        assert {"video", "actions", "poses", "labels", "depth"} <= set(f.files)
    pred = out / "rollouts" / "millivid" / f"seed{SEED}.npz"
    probe = ["evaluate", "--pred", str(pred), "--gt", str(out / "gt" / f"seed{SEED}.npz")]
    assert main([*probe, "--metrics", "probe", "--json", "--device", "cpu"]) == 0
    scores = json.loads(capsys.readouterr().out)["horizons"]["short"]
    assert 0 <= scores["probe_acc"] <= 1
