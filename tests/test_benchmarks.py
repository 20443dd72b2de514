"""The GPU benchmarks run on the CPU with the tiny preset (their documented smoke runs), so a
broken benchmark is caught here and not on the GPU."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = {
    "train": ["--batch", "2", "--steps", "1", "--warmup", "1"],
    "rollout": ["--batch", "2", "--steps", "1", "--warmup", "1", "--denoise-steps", "2"],
    "generate": ["--batch", "1", "--plan-steps", "2", "--denoise-steps", "2", "--frames", "8"],
}


def run_benchmark(script: str, *args: str, fails_with: str = "") -> subprocess.CompletedProcess:
    """``benchmarks/<script>`` with ``args`` from the checkout root; fails the test (with its
    stderr) unless it exits 0, or with ``fails_with``: unless it fails with that in its stderr."""
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args], cwd=ROOT, capture_output=True, text=True
    )
    if fails_with:
        assert done.returncode != 0 and fails_with in done.stderr, done.stderr[-2000:]
    else:
        assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.parametrize("mode", sorted(SMOKE))
def test_bench_video_model_smoke_run(mode, tmp_path):
    out = tmp_path / "result.json"
    args = ["--device", "cpu", "--preset", "tiny", "--no-compile", "--mode", mode, *SMOKE[mode]]
    if mode != "generate":
        args += ["--profile", str(tmp_path / "kernels.txt")]
    run_benchmark("bench_video_model.py", *args, "--json", str(out))
    result = json.loads(out.read_text())
    assert result["mode"] == mode
    timed = {"train": "samples_per_s", "rollout": "speedup", "generate": "total_s"}[mode]
    assert result[timed] > 0
    if mode != "generate":
        assert "Name" in (tmp_path / "kernels.txt").read_text()  # the profiler's table


def test_bench_video_model_trains_a_variant_with_its_memory_tokens(tmp_path):
    args = ["--device", "cpu", "--preset", "tiny", "--no-compile", *SMOKE["train"]]
    sequence = {}
    for variant in ("millivid", "millivid-own-level-memory"):
        out = tmp_path / f"{variant}.json"
        run_benchmark("bench_video_model.py", *args, "--variant", variant, "--json", str(out))
        result = json.loads(out.read_text())
        assert result["variant"] == variant and result["samples_per_s"] > 0
        sequence[variant] = result["sequence"]
    assert sequence["millivid-own-level-memory"] > sequence["millivid"]  # + the memory tokens
    run_benchmark(
        "bench_video_model.py", *args, "--mode", "rollout", "--variant", "millivid",
        fails_with="--variant: train and batch modes only",
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ["step", "--preset", "tiny", "--batch", "2", "--steps", "1"],
        ["compare", "--variants", "channels=4", "channels=8,cooldown=0.5", "--steps", "3"]
        + ["--videos", "2", "--batch", "4"],
    ],
    ids=["step", "compare"],
)
def test_bench_autoencoder_smoke_run(args):
    done = run_benchmark("bench_autoencoder.py", *args, "--device", "cpu")
    result = json.loads(done.stdout[done.stdout.index("{\n") :])  # the final indented JSON
    if args[0] == "step":
        assert result["frames_per_s"] > 0
    else:
        assert [r["variant"] for r in result["runs"]] == args[2:4]
        assert all(len(r["psnr"]) == 3 for r in result["runs"])


def test_ddp_scaling_smoke_run(tmp_path):
    """One and two gloo processes of a real `video train` on a random-latent cache."""
    out = tmp_path / "result.json"
    args = ["--preset", "tiny", "--gpus", "1,2", "--steps", "8", "--videos", "2", "--frames"]
    args += ["64", "--device", "cpu", "--out", str(tmp_path / "work"), "--json", str(out)]
    args += ["--set", "video_train.log_every=2", "--set", "video_train.num_workers=0"]
    run_benchmark("ddp_scaling.py", *args)
    runs = json.loads(out.read_text())["runs"]
    assert [r["gpus"] for r in runs] == [1, 2] and all(r["samples_per_s"] > 0 for r in runs)
    assert runs[0]["speedup"] == 1.0


def test_video_level_loss_splits_draw_disjoint_seeds():
    """train: the first training seeds; test: held-out test trajectories; unseen: the training
    kind of video (not the test selection) from seeds nothing trains on."""
    from millivid.world import TEST_SEED_OFFSET

    videos_of = _load_benchmark("video_level_loss").videos_of
    train, test, unseen = (videos_of(s, 4) for s in ("train", "test", "unseen"))
    assert train == ([0, 1, 2, 3], False) and test[1] and not unseen[1]
    assert not set(train[0]) & set(test[0]) and not set(test[0]) & set(unseen[0])
    assert min(test[0] + unseen[0]) >= TEST_SEED_OFFSET  # beyond any training run's seeds


def test_video_level_loss_scores_the_shipped_model_under_a_config_change(tmp_path):
    """The teacher-forced level losses of docs/results/HISTORY.md, on one short held-out video,
    with a --set that the weights allow (more memory frames than it was trained with)."""
    out = tmp_path / "levels.json"
    args = ["--ckpt", "checkpoints/mini/millivid", "--videos", "1", "--frames", "400"]
    args += ["--batch", "2", "--set", "plan.memory_frames=8", "--json", str(out)]
    run_benchmark("video_level_loss.py", *args, "--split", "test", "--context-noise", "0.6")
    result = json.loads(out.read_text())
    assert result["split"] == "test" and result["test_trajectories"]
    assert sorted(result["levels"]) == ["0", "1", "2", "3"]
    for level in result["levels"].values():
        assert 0 < level["loss"] < 2 and 0 < level["context_dropped"] < 2
        assert level["context_noised"] > level["loss"]  # a history it cannot trust costs
    # one level only, with the coarsest level's first-frame check; a level it has no steps at
    args = ["--ckpt", "checkpoints/mini/millivid", "--videos", "1", "--frames", "400"]
    args += ["--batch", "2", "--levels", "3", "--times", "0.2,0.9", "--json", str(out)]
    run_benchmark("video_level_loss.py", *args)
    result = json.loads(out.read_text())
    assert list(result["levels"]) == ["3"] and result["first_frame"]["model"] > 0
    times = result["levels"]["3"]["times"]
    assert sorted(times) == ["0.2", "0.9"]
    assert times["0.2"]["x0_mse"] < times["0.9"]["x0_mse"]  # less noise, a closer estimate
    args = ["--ckpt", "checkpoints/mini/millivid", "--videos", "1", "--frames", "400"]
    run_benchmark("video_level_loss.py", *args, "--levels", "5", fails_with="--levels [5]")


def test_revisit_context_with_noised_coarse_context(tmp_path):
    """The memory-removal check of docs/results/HISTORY.md with the coarse context noised, on one
    video: noising it makes the fine step's loss higher than with the coarse context clean."""
    losses = {}
    for noise in ("0", "0.3"):
        out = tmp_path / f"noise{noise}.json"
        args = ["--ckpt", "checkpoints/mini/millivid", "--videos", "1", "--steps", "2", "--t", "1"]
        args += ["--frames", "384", "--level", "1", "--memory", "--context-noise", noise]
        args += ["--json", str(out)]
        run_benchmark("revisit_context.py", *args)
        result = json.loads(out.read_text())
        assert result["context_noise"] == float(noise) and result["steps"] == 2
        losses[noise] = result["loss_full"]
    assert losses["0.3"] > losses["0"]


def test_teacher_forced_steps_sample_each_level_from_the_true_context(tmp_path):
    """Every level's steps of the shipped model, on one video, sampled with the true video as
    context: each level is scored on the generated frames; the level-0 sample, given the true
    coarse levels of its own frames, is close to the truth (a step that read anything but the
    truth would not be), and the truth's own latents are closer still."""
    out = tmp_path / "steps.json"
    args = ["--ckpt", "checkpoints/mini/millivid", "--videos", "1", "--frames", "6"]
    run_benchmark("teacher_forced_steps.py", *args, "--sample-steps", "4", "--json", str(out))
    levels = json.loads(out.read_text())["levels"]
    assert sorted(levels) == ["0", "1", "2", "3"]
    assert all(level["frames"] == 6 for level in levels.values())
    fine = levels["0"]
    assert 20.0 < fine["psnr_sample"][0] < fine["psnr_truth_latents"][0]
    assert levels["3"]["psnr_truth_latents"][0] < fine["psnr_truth_latents"][0]


def test_teacher_forced_steps_of_one_level(tmp_path):
    """``--levels 3`` runs only the coarsest level's steps: only level 3 is scored; with a level
    left to generate (not forced) it is refused, since the skipped steps would write nothing."""
    out = tmp_path / "l3.json"
    args = ["--ckpt", "checkpoints/mini/millivid", "--videos", "1", "--frames", "6"]
    args += ["--sample-steps", "2", "--levels", "3"]
    run_benchmark("teacher_forced_steps.py", *args, "--json", str(out))
    levels = json.loads(out.read_text())["levels"]
    assert list(levels) == ["3"] and levels["3"]["frames"] == 6
    refused = "--levels needs --forced-levels all"
    run_benchmark("teacher_forced_steps.py", *args, "--forced-levels", "1,2,3", fails_with=refused)


def test_teacher_forced_steps_paired_against_another_run(tmp_path):
    """``--against`` a run on the same videos prints this run's sample PSNR minus that one's,
    paired per video, for every level both scored; a run of other frames is refused by name."""
    args = ["--ckpt", "checkpoints/mini/millivid", "--videos", "2", "--frames", "1"]
    args += ["--sample-steps", "2"]
    forced, rollout = tmp_path / "all.json", tmp_path / "none.json"
    run_benchmark("teacher_forced_steps.py", *args, "--json", str(forced))
    shown = run_benchmark(
        "teacher_forced_steps.py", *args, "--forced-levels", "none", "--json", str(rollout),
        "--against", str(forced),
    ).stdout  # fmt: skip
    a = json.loads(rollout.read_text())["levels"]
    b = json.loads(forced.read_text())["levels"]
    for level in ("0", "3"):
        d = np.array(a[level]["psnr_sample"]) - np.array(b[level]["psnr_sample"])
        assert f"| {level} | {d.mean():+.2f} ± " in shown.split("all.json's")[1]
    assert abs(np.mean(a["3"]["psnr_sample"]) - np.mean(b["3"]["psnr_sample"])) < 1e-9
    other = ["--ckpt", "checkpoints/mini/millivid", "--videos", "2", "--frames", "2"]
    refused = f"--against {forced}: another run (differs in ['frames'])"
    run_benchmark("teacher_forced_steps.py", *other, "--against", str(forced), fails_with=refused)


def test_teacher_forced_steps_with_no_level_forced_is_the_rollout(tmp_path):
    """``--forced-levels none`` runs the plan as ``millivid generate`` does (same noise, every
    step reading what earlier steps wrote): its level-0 samples are the rollout's latents; with
    every level forced the store keeps the truth."""
    from dataclasses import replace

    import torch

    from millivid.jobs.autoencoder import load_autoencoder
    from millivid.plan import make_plan
    from millivid.rollout.generate import load_video_model
    from millivid.rollout.request import GenerateRequest
    from millivid.rollout.resumable import prepare_rollout, rollout_latents, write_context
    from millivid.world import TEST_SEED_OFFSET, make_videos

    bench = _load_benchmark("teacher_forced_steps")
    model, cfg, method = load_video_model(ROOT / "checkpoints/mini/millivid", "cpu")
    ae = load_autoencoder(ROOT / "checkpoints/mini/ae", "cpu")
    context, frames = 8, 6
    total = max(s.last_frame for s in make_plan(method, cfg.plan, context, context + frames))
    world = replace(cfg.world, frames=total, test_context_frames=context)
    v = make_videos([TEST_SEED_OFFSET + 3000], world, "cpu", test=True)
    req = GenerateRequest(
        frames=v.video.numpy(), actions=v.actions.numpy(), poses=v.poses.numpy(),
        context=context, length=frames, seed=3, steps=2,
    )  # fmt: skip
    expected = rollout_latents(req, model, cfg, method, ae, progress=False)
    samples = {}
    for name, forced in (("none", set()), ("all", {0, 1, 2, 3})):
        rollout = prepare_rollout(req, model, cfg, method, ae)
        write_context(rollout.store, ae, v.video.numpy())
        truth = [z.clone() for z in rollout.store.levels]
        samples[name] = bench.teacher_forced_samples(rollout, context, frames, 3, forced)
        if forced:
            assert all(torch.equal(a, b) for a, b in zip(truth, rollout.store.levels))
    got = samples["none"][0][:, context : context + frames]
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(samples["all"][0][:, context : context + frames], expected)
    assert bench.forced_levels("1,2,3", 4) == {1, 2, 3} and bench.forced_levels("none", 4) == set()
    with pytest.raises(SystemExit, match="levels 0..3"):
        bench.forced_levels("4", 4)


def test_world_stats_counts_returns_of_each_training_trajectory_kind():
    """The trajectory table of docs/WORLD.md: three splits, each with a share of returns."""
    done = run_benchmark("world_stats.py", "--preset", "tiny", "--seeds", "3", "--gap", "8")
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "%" in line]
    assert [r.split(" | ")[0] for r in rows] == [
        "| training (law)",
        "| training (revisit)",
        "| test (A.1)",
    ]
    shares = [float(r.split(" | ")[4].rstrip(" %|")) for r in rows]
    assert all(0.0 <= s <= 100.0 for s in shares)


def test_revisit_reach_gives_the_revisit_share_of_each_horizon():
    """The test set as data make --test selects it (here with --set): per horizon, its revisit
    frames and their share of the horizon's generated frames (3 videos x 8 / 24 / 32 frames)."""
    args = ["--preset", "tiny", "--videos", "3", "--context", "32", "--frames", "64"]
    done = run_benchmark("revisit_reach.py", *args, "--set", "world.test_keep_lowest=1")
    lines = done.stdout.splitlines()
    assert [x.split(":")[0] for x in lines] == ["short", "medium", "long"]
    for line, frames in zip(lines, (8, 24, 32), strict=True):
        count = int(line.split(": ")[1].split(" ")[0])
        share = float(line.split("(")[1].split("%")[0])
        assert share == pytest.approx(100 * count / (3 * frames), abs=0.05)


def _load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"benchmarks/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _teleport_back_poses() -> np.ndarray:
    """10 context frames at x = 0..9; generated frames 10..19 at x = 20..29, then 20..29 back at
    x = 20..29 (same yaw): frame j >= 20 returns to frame j - 10."""
    x = np.concatenate([np.arange(10), 20 + np.arange(10), 20 + np.arange(10)])
    poses = np.zeros((30, 5), np.float32)
    poses[:, 0] = x
    return poses


def test_return_triples_pair_a_return_with_its_place_and_with_elsewhere():
    """j returns to i = j - 10; k is the frame nearest to i in time more than 4 blocks away
    (twice the 2-block threshold); no k in the window: j is left out."""
    sc = _load_benchmark("self_consistency")
    triples = sc.return_triples(_teleport_back_poses(), start=10, gap=10)
    assert triples == [(j - 10, j, j - 15) for j in range(25, 30)]


def test_self_consistency_scores_memory_zero_and_forgetting_or_stillness_below(tmp_path):
    """Frames drawn from the pose: the truth itself scores 0; a still video (every pair alike)
    and one that forgets (new frames at the return) have no contrast and score below it."""
    from millivid.data import VideoRecord, save_video

    poses = _teleport_back_poses()
    rng = np.random.default_rng(0)
    place = {x: rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for x in range(40)}
    truth = np.stack([place[int(x)] for x in poses[:, 0]])
    forget = truth.copy()
    forget[20:] = rng.integers(0, 256, forget[20:].shape, dtype=np.uint8)
    still = np.repeat(truth[9:10], 30, axis=0)
    for name, video in (("gt", truth), ("truth", truth), ("forget", forget), ("still", still)):
        folder = tmp_path if name == "gt" else tmp_path / "pred" / name
        save_video(
            (folder / "gt" if name == "gt" else folder) / "v0.npz", VideoRecord(video, poses=poses)
        )
    out = tmp_path / "sc.json"
    args = ["--pred-dir", str(tmp_path / "pred"), "--gt-dir", str(tmp_path / "gt")]
    run_benchmark("self_consistency.py", *args, "--start", "10", "--gap", "10", "--json", str(out))
    result = json.loads(out.read_text())
    assert result["truth"]["pairs"] == 5 and result["truth"]["diff"] == 0.0
    assert result["truth"]["truth"] > 30  # the same frame (100 dB) against another place
    assert result["still"]["contrast"] == 0.0
    assert result["forget"]["diff"] < -30 and result["still"]["diff"] < -30
    assert result["forget"]["per_video"] == {"v0": result["forget"]["diff"]}
    # paired with a reference: the truth's contrast cancels, the reference itself is left out
    run_benchmark(
        "self_consistency.py",
        *args,
        "--start",
        "10",
        "--gap",
        "10",
        "--json",
        str(out),
        "--reference",
        "still",
    )
    paired = json.loads(out.read_text())["paired"]["still"]
    assert set(paired) == {"truth", "forget"} and paired["truth"]["videos"] == 1
    assert paired["truth"]["diff"] == pytest.approx(-result["still"]["diff"])
    assert paired["forget"]["diff"] == pytest.approx(
        result["forget"]["diff"] - result["still"]["diff"]
    )


def test_returns_counts_a_way_back_and_not_a_straight_line():
    world_stats = _load_benchmark("world_stats")
    out = np.zeros((40, 5))
    out[:, 0] = np.arange(40)  # 40 frames straight along x, one block per frame, yaw 0
    assert world_stats.returns(out, gap=8) == 0.0
    back = np.concatenate([out, out[::-1]])
    # back along the same line (same yaw): frame t >= 43 (at x = 79 - t) is within 2 blocks of
    # frame 79 - t +- 2 <= t - 8; 37 of the 72 frames from frame 8 on
    assert world_stats.returns(back, gap=8) == pytest.approx(37 / 72)


def test_rollout_backends_compares_attention_kernels(tmp_path):
    """The kernel check of docs/results/HISTORY.md on one short held-out video: the math
    backend's first rollout step, and flash's (the CPU has both) within float error of it, twice
    each."""
    out = tmp_path / "backends.json"
    args = ["--ckpt", "checkpoints/mini/millivid", "--videos", "1", "--context", "32"]
    args += ["--frames", "3", "--steps", "1", "--batch", "1", "--device", "cpu", "--json", str(out)]
    run_benchmark("rollout_backends.py", *args)
    backends = json.loads(out.read_text())["backends"]
    assert {"math", "flash"} <= set(backends)
    for row in backends.values():
        assert row["exploded"] == 0 and row["batches"] == 2 and 0 < row["largest"] < 100
        assert row["repeat_diff"] == 0.0 and row["max_diff_vs_first"] < 1e-3


def test_gain_by_revisits_groups_the_lead_by_each_videos_revisit_share(tmp_path):
    """Two videos, the long horizon (frames 257-768): A leads B by 2 dB on the video without
    revisits and by 0 dB on the one that revisits on every frame."""
    path = tmp_path / "per_frame.csv"
    lines = ["method,video,frame,revisit,turn,psnr"]
    for frame in (300, 301):
        lines += [f"A,v0,{frame},0,0,20", f"B,v0,{frame},0,0,18"]
        lines += [f"A,v1,{frame},1,0,15", f"B,v1,{frame},1,0,15"]
        lines += [f"A,v1,{frame - 100},0,0,99"]  # medium horizon: not counted
        # the oracle: 25 dB on the revisit frames; its novel frames do not count
        lines += [f"autoencoder,v0,{frame},0,0,30", f"autoencoder,v1,{frame},1,0,25"]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "lead.json"
    args = ["--csv", str(path), "--method", "A", "--baseline", "B", "--json", str(out)]
    run_benchmark("gain_by_revisits.py", *args)
    result = json.loads(out.read_text())
    assert result["videos"] == 2 and result["lead"] == pytest.approx(1.0)
    assert result["correlation"] == pytest.approx(-1.0)
    leads = {g["revisit_share"]: (g["videos"], g["lead"]) for g in result["groups"]}
    assert leads["none"] == (1, pytest.approx(2.0)) and leads[">= 30 %"] == (1, 0.0)
    memory = result["memory"]  # half the frames revisit; all of the 1 dB lead is on novel ones
    assert memory["revisit_share"] == 0.5 and memory["frames"] == 4
    assert memory["lead_on_revisit_frames"] == 0 and memory["lead_on_novel_frames"] == 1.0
    assert memory["ceiling_lead"] == pytest.approx((2 * 2 + 10 * 2) / 4)  # revisits at 25 dB


def test_scaling_curve_pairs_the_lead_at_each_point_and_splits_it(tmp_path):
    """Two points, two videos at the long horizon: A − B is +1 / +3 dB per video at x = 1 (mean
    +2), +2 / +2 at x = 2; on the revisit video only (v1) +3 and +2; the figure is drawn."""
    points = []
    for x, (d0, d1) in ((1, (1, 3)), (2, (2, 2))):
        path = tmp_path / f"p{x}.csv"
        lines = ["method,video,frame,revisit,turn,psnr"]
        for frame in (300, 301):
            lines += [f"A,v0,{frame},0,0,{15 + d0}", f"B,v0,{frame},0,0,15"]
            lines += [f"A,v1,{frame},1,0,{15 + d1}", f"B,v1,{frame},1,0,15"]
            lines += [f"context-mean,v0,{frame},0,0,14", f"context-mean,v1,{frame},1,0,14"]
        path.write_text("\n".join(lines) + "\n")
        points += ["--point", f"{x}={path}"]
    out, fig = tmp_path / "curve.json", tmp_path / "curve.png"
    args = [*points, "--method", "A", "--baseline", "B", "--json", str(out), "--out", str(fig)]
    done = run_benchmark("scaling_curve.py", *args)
    result = json.loads(out.read_text())
    assert (result["method"], result["baseline"], result["metric"]) == ("A", "B", "psnr")
    first, second = result["points"]["1"], result["points"]["2"]
    assert first["lead"]["all"]["long"]["mean"] == pytest.approx(2.0)
    assert first["lead"]["all"]["long"]["videos"] == 2
    assert second["lead"]["all"]["long"]["mean"] == pytest.approx(2.0)
    assert second["lead"]["all"]["long"]["ci95"] == pytest.approx(0.0)
    assert first["lead"]["revisit"]["long"]["mean"] == pytest.approx(3.0)
    assert second["lead"]["novel"]["long"]["mean"] == pytest.approx(2.0)
    assert first["means"]["context-mean"]["long"] == pytest.approx(14.0)
    assert "short" not in first["lead"]["all"] and fig.stat().st_size > 0
    assert "| 2 |" in done.stdout

    # a curve grows by a point: the first point from the numbers kept, the second from its CSV
    only_first = tmp_path / "first.json"
    run_benchmark("scaling_curve.py", *points[:2], "--method", "A", "--baseline", "B",
                  "--json", str(only_first))  # fmt: skip
    grown = tmp_path / "grown.json"
    run_benchmark("scaling_curve.py", "--points-json", str(only_first), *points[2:], "--method",
                  "A", "--baseline", "B", "--json", str(grown))  # fmt: skip
    assert json.loads(grown.read_text()) == result
    run_benchmark("scaling_curve.py", "--points-json", str(only_first), "--method", "B",
                  "--baseline", "A", fails_with="A − B in psnr, not B − A in psnr")  # fmt: skip

    # a point where only the baseline has finished: its means join the curve, the lead stays empty
    alone = tmp_path / "p3.csv"
    alone.write_text("method,video,frame,revisit,turn,psnr\nB,v0,300,0,0,13\nB,v1,300,1,0,15\n")
    three = tmp_path / "three.json"
    done = run_benchmark("scaling_curve.py", "--points-json", str(out), "--point", f"3={alone}",
                         "--method", "A", "--baseline", "B", "--json", str(three),
                         "--out", str(tmp_path / "three.png"))  # fmt: skip
    third = json.loads(three.read_text())["points"]["3"]
    assert third["means"] == {"B": {"long": pytest.approx(14.0)}}
    assert third["lead"] == {"all": {}, "revisit": {}, "novel": {}}
    assert "| 3 | - | 14.00 | - | - | - | -" in done.stdout


def test_scaling_curve_names_a_point_it_cannot_read(tmp_path):
    neither = tmp_path / "p.csv"  # rows of neither model
    neither.write_text("method,video,frame,revisit,turn,psnr\nC,v0,300,0,0,13\n")
    for point, message in (
        ("steps=x.csv", "expected NUMBER=per_frame.csv"),
        (f"1={tmp_path / 'no.csv'}", "no such per_frame.csv"),
        (f"1={neither}", "no rows of 'A' or 'B'"),
    ):
        run_benchmark("scaling_curve.py", "--point", point, "--method", "A", "--baseline", "B",
                      fails_with=message)  # fmt: skip


def test_matched_sharpness_removes_a_hedge_and_keeps_knowledge(tmp_path):
    """A wrong sharp guess (B) against the same guess blurred (A: a hedge) and against the truth
    blurred (C: knowledge): A leads B as scored, not at matched sharpness; C leads at both."""
    import torch

    from millivid.data import VideoRecord, save_video

    spec = importlib.util.spec_from_file_location("ms", ROOT / "benchmarks/matched_sharpness.py")
    ms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ms)
    rng = np.random.default_rng(0)
    for v in range(3):
        truth, wrong = (rng.integers(0, 256, (68, 16, 16, 3), dtype=np.uint8) for _ in range(2))
        videos = {
            "gt": truth,
            "B": wrong,
            "A": ms.blur(torch.as_tensor(wrong), 1.0).numpy(),
            "C": ms.blur(torch.as_tensor(truth), 1.0).numpy(),
        }
        for name, video in videos.items():
            save_video(tmp_path / name / f"v{v}.npz", VideoRecord(video))
    out = tmp_path / "m.json"
    base = ["--pred-dir", str(tmp_path), "--gt-dir", str(tmp_path / "gt"), "--start", "4"]
    run_benchmark(
        "matched_sharpness.py", *base, "--method", "A", "--baseline", "B", "--json", str(out)
    )
    hedge = json.loads(out.read_text())["short"]
    assert hedge["blurred"] == "baseline" and hedge["videos"] == 3
    assert hedge["lead"]["mean"] > 1.0 and abs(hedge["matched_lead"]["mean"]) < 0.2
    assert 0.8 < hedge["sigma"] < 1.2
    run_benchmark(
        "matched_sharpness.py", *base, "--method", "C", "--baseline", "B", "--json", str(out)
    )
    knowledge = json.loads(out.read_text())["short"]
    assert knowledge["matched_lead"]["mean"] > 1.0  # the hedge: about 0


def test_tiny_ab_trains_both_arms_and_pairs_their_held_out_losses(tmp_path):
    """Mirrored FramePack by value (A) and by token (B): both scored per value, on all targets
    and on the kept ones alone."""
    out = tmp_path / "ab"
    args = ["--out", str(out), "--set", "diffusion.loss_unit=token", "--steps", "2"]
    args += ["--method", "mirrored-framepack"]
    done = run_benchmark("tiny_ab.py", *args, "--videos", "1", "--json", str(tmp_path / "r.json"))
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["set"] == ["diffusion.loss_unit=token"] and result["seeds"] == [0]
    assert set(result["levels"]) == {"0"}  # mirrored FramePack's steps target level 0
    for row in result["levels"].values():
        assert row["B_minus_A"] == [pytest.approx(row["B"][0] - row["A"][0])]
        assert row["A_kept"][0] != row["A"][0]  # the kept targets alone
        assert row["A_kept_dropped"] and row["B_kept_dropped"]
    assert "| 0 |" in done.stdout and "the targets kept at sampling alone" in done.stdout
    b = json.loads((out / "B-seed0" / "checkpoint" / "config.json").read_text())
    a = json.loads((out / "A-seed0" / "checkpoint" / "config.json").read_text())
    assert b["diffusion"]["loss_unit"] == "token" and a["diffusion"]["loss_unit"] == "value"
    # the same --out with other settings: the trainer's refusal, not a stale run
    run_benchmark("tiny_ab.py", *args, "--base-set", "model.depth=1", fails_with="Error")
    assert "config differs" in (out / "A-seed0.log").read_text()
