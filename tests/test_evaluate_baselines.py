"""Trivial baselines (evaluate/baselines.py, `millivid baseline`) scored by `millivid evaluate`."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from millivid.cli import main
from millivid.evaluate.baselines import context_mean, copy_last, nearest_pose, parse_kinds
from millivid.evaluate.splits import nearest_context

CONTEXT = 16


@pytest.fixture(scope="module")
def world():
    """Two tiny world videos (40 frames, 16x16: rendering is most of the time) with actions and
    poses."""
    from millivid.presets import PRESETS
    from millivid.world import make_videos

    return make_videos([3, 4], replace(PRESETS["tiny"].world, frames=40, size=16))


@pytest.fixture(scope="module")
def gt_dir(world, tmp_path_factory):
    gt = tmp_path_factory.mktemp("gt")
    for i in range(2):
        np.savez(
            gt / f"v{i}.npz",
            video=world.video[i].numpy(),
            actions=world.actions[i].numpy(),
            poses=world.poses[i].numpy(),
        )
    return gt


def test_copy_last_and_context_mean_are_what_they_say():
    ctx = np.zeros((3, 2, 2, 3), np.uint8)
    ctx[:, 0, 0, 0] = [10, 20, 40]  # mean 23.33 -> 23
    ctx[:, 0, 1, 0] = [0, 1, 2]  # mean 1 exactly
    ctx[:, 1, 0, 0] = [255, 255, 254]  # 254.67 -> 255
    ctx[:2, 1, 1, 0] = [0, 1]  # with the third frame 0: mean 1/3 -> 0
    mean = context_mean(ctx, 4)
    assert mean.shape == (4, 2, 2, 3) and mean.dtype == np.uint8
    assert (mean == mean[0]).all()  # one static frame
    assert mean[0, :, :, 0].tolist() == [[23, 1], [255, 0]]
    assert context_mean(np.array([[[[0]]], [[[1]]]], np.uint8), 1).item() == 0  # half to even
    last = copy_last(ctx, 5)
    assert last.shape == (5, 2, 2, 3) and (last == ctx[-1]).all()


def test_nearest_pose_copies_the_context_frame_of_the_nearest_pose():
    frames = np.arange(4, dtype=np.uint8)[:, None, None, None].repeat(3, -1)  # frame i is all i
    ctx_poses = np.array([[0, 0, 0, 0, 0], [4, 0, 0, 0, 0], [4, 0, 0, 90, 0], [8, 0, 0, 0, 0]])
    query = np.array(
        [[3.5, 0.4, 0, 10, 0], [4.2, 0, 0, 80, 0], [20, 0, 0, 0, 0], [0, 0, 0, -355, 0]]
    )
    got = nearest_pose(frames, ctx_poses, query, 2.0, 15.0)
    assert got[:, 0, 0, 0].tolist() == [1, 2, 3, 0]


def test_parse_kinds():
    assert parse_kinds("all") == ("copy-last", "context-mean", "nearest-pose")
    assert parse_kinds("nearest-pose,copy-last") == ("nearest-pose", "copy-last")
    with pytest.raises(ValueError, match="unknown baseline"):
        parse_kinds("copy-first")


def test_baseline_command_writes_rollout_files(gt_dir, tmp_path, capsys):
    out = tmp_path / "rollouts"
    args = ["--gt-dir", str(gt_dir), "--out", str(out), "--context", str(CONTEXT)]
    assert main(["baseline", "--kind", "all", *args]) == 0
    for i in range(2):
        gt = np.load(gt_dir / f"v{i}.npz")
        video, actions = gt["video"], gt["actions"]
        files = {k: np.load(out / k / f"v{i}.npz") for k in parse_kinds("all")}
        for f in files.values():
            assert f["video"].shape == video.shape and f["video"].dtype == np.uint8
            assert (f["video"][:CONTEXT] == video[:CONTEXT]).all()  # the context is kept
            assert (f["actions"] == actions).all()
        assert (files["copy-last"]["video"][CONTEXT:] == video[CONTEXT - 1]).all()
        mean = np.rint(video[:CONTEXT].mean(0))
        assert (files["context-mean"]["video"][CONTEXT:] == mean).all()
        index, _ = nearest_context(gt["poses"][CONTEXT:], gt["poses"][:CONTEXT], 2.0, 15.0)
        assert (files["nearest-pose"]["video"][CONTEXT:] == video[index]).all()
    one = tmp_path / "one"
    assert main(["baseline", "--kind", "copy-last", *args[:2], "--out", str(one)]) == 1
    assert "v0.npz: --context 256 must be in (0, 40)" in capsys.readouterr().err  # the default
    assert (
        main(["baseline", "--kind", "copy-last", *args[:2], "--out", str(one), "--context", "8"])
        == 0
    )
    assert sorted(p.name for p in one.iterdir()) == ["v0.npz", "v1.npz"]  # OUT/<video>.npz


def test_every_kind_is_written_from_one_read_of_each_video(gt_dir, tmp_path, monkeypatch):
    """Several kinds into per-kind folders (as `reproduce` asks, also for one kind): each ground
    truth is read once for all of them, and the files are those of one kind at a time."""
    import millivid.evaluate.baselines as baselines
    from millivid.presets import EVAL_PRESETS

    cfg = EVAL_PRESETS["tiny"]
    reads = []
    load = baselines.load_video
    monkeypatch.setattr(baselines, "load_video", lambda p, **kw: reads.append(p) or load(p, **kw))
    kinds = ["copy-last", "context-mean", "nearest-pose"]
    written = baselines.write_baselines(gt_dir, tmp_path / "all", kinds, CONTEXT, cfg, workers=2)
    assert sorted(p.name for p in reads) == ["v0.npz", "v1.npz"]
    for k in kinds:
        alone = baselines.write_baselines(gt_dir, tmp_path / k, [k], CONTEXT, cfg, subfolders=True)
        assert alone[k] == [tmp_path / k / k / f"v{i}.npz" for i in range(2)]
        for mine, theirs in zip(written[k], alone[k], strict=True):
            assert (np.load(mine)["video"] == np.load(theirs)["video"]).all()


def test_nearest_pose_without_poses_names_the_file(world, tmp_path, capsys):
    gt = tmp_path / "gt"
    gt.mkdir()
    np.savez(gt / "noposes.npz", video=world.video[0].numpy())
    args = ["baseline", "--kind", "nearest-pose", "--gt-dir", str(gt), "--out", str(tmp_path)]
    assert main([*args, "--context", "8"]) == 1
    err = capsys.readouterr().err
    assert "noposes.npz" in err and "'poses'" in err


def test_own_ground_truth_is_perfect_recall(world, tmp_path, capsys):
    """A video whose generated frames come back to context poses exactly: the GT renders at those
    poses are the context frames, so nearest-pose recalls them exactly (PSNR at its 100 dB cap),
    and every generated frame is a revisit."""
    video, poses = world.video[0].numpy(), world.poses[0].numpy()
    order = np.random.default_rng(0).permutation(CONTEXT)
    gt = tmp_path / "gt"
    gt.mkdir()
    np.savez(
        gt / "loop.npz",
        video=np.concatenate([video[:CONTEXT], video[order]]),
        poses=np.concatenate([poses[:CONTEXT], poses[order]]),
        actions=np.zeros(2 * CONTEXT, np.int64),
    )
    out = tmp_path / "nearest-pose"
    args = ["--gt-dir", str(gt), "--out", str(out), "--context", str(CONTEXT)]
    assert main(["baseline", "--kind", "nearest-pose", *args]) == 0
    pred = ["--pred", str(out / "loop.npz"), "--gt", str(gt / "loop.npz")]
    capsys.readouterr()
    assert main(["evaluate", *pred, "--start", str(CONTEXT), "--horizons", "4,16", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["per_frame"]["psnr"] == [100.0] * CONTEXT
    assert res["splits"]["frames"]["revisit"] == [1] * CONTEXT
    assert res["splits"]["horizons"]["revisit"]["h2"]["psnr"] == 100.0
    assert "novel" not in res["splits"]["horizons"]
    assert res["splits"]["share"]["h1"] == {"frames": 4, "revisit": 1.0, "turn": 0.0}


def test_baselines_are_scored_as_methods(gt_dir, tmp_path):
    """End to end: baselines next to a model's rollouts; results.json and table.md show them,
    memory gains are taken against nearest-pose, paired.md against several references."""
    rollouts = tmp_path / "rollouts"
    args = ["--gt-dir", str(gt_dir), "--context", str(CONTEXT)]
    assert main(["baseline", "--kind", "all", *args, "--out", str(rollouts)]) == 0
    (rollouts / "model").mkdir()
    for i in range(2):  # a "model" that is ground truth with noise
        gt = np.load(gt_dir / f"v{i}.npz")["video"].astype(int)
        noisy = gt + np.random.default_rng(i).integers(-20, 21, gt.shape)
        np.savez(rollouts / "model" / f"v{i}.npz", video=noisy.clip(0, 255).astype(np.uint8))
    ev = tmp_path / "eval"
    flags = ["--start", str(CONTEXT), "--horizons", "4,12,24", "--out", str(ev), "--no-progress"]
    refs = ["--reference", "model,nearest-pose"]
    assert main(["evaluate", "--pred-dir", str(rollouts), *args[:2], *flags, *refs]) == 0
    res = json.loads((ev / "results.json").read_text())
    assert set(res["horizons"]) == {"copy-last", "context-mean", "nearest-pose", "model"}
    assert res["references"] == ["model", "nearest-pose"]
    assert res["splits"]["thresholds"] == {"revisit_distance": 2.0, "revisit_yaw": 15.0}
    gain = res["splits"]["memory_gain"]
    assert gain["reference"] == "nearest-pose" and "model" in gain["vs_reference"]
    table = (ev / "table.md").read_text()
    assert "Trivial baselines (no generation): context-mean, copy-last, nearest-pose." in table
    assert "## Revisit and novel frames" in table and "## Memory gain" in table
    assert "at the cap" not in table  # no generated frame equals the ground truth here
    paired = (ev / "paired.md").read_text()
    assert "### copy-last − model (2 videos)" in paired
    assert "### model − nearest-pose (2 videos)" in paired and "| PSNR · revisit |" in paired


def test_autoencoder_baselines_decode_what_they_copy():
    """`autoencoder` is the ground truth's generated frames through the decoder, `<kind>-ae` the
    kind's frames through it; without an autoencoder they are refused."""
    from millivid.evaluate.baselines import baseline_video
    from millivid.evaluate.config import EvalConfig

    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (12, 4, 4, 3), dtype=np.uint8)
    poses = np.zeros((12, 5))
    poses[:, 0] = np.arange(12) % 6  # frames 6-11 come back to the poses of 0-5
    invert = lambda frames: 255 - frames  # noqa: E731 (a stand-in decoder, easy to check)
    cfg = EvalConfig()
    ae = baseline_video("autoencoder", video, poses, 6, cfg, invert)
    assert (ae[:6] == video[:6]).all() and (ae[6:] == 255 - video[6:]).all()
    near = baseline_video("nearest-pose", video, poses, 6, cfg)
    assert (near[6:] == video[:6]).all()
    near_ae = baseline_video("nearest-pose-ae", video, poses, 6, cfg, invert)
    assert (near_ae[6:] == 255 - video[:6]).all()
    last_ae = baseline_video("copy-last-ae", video, poses, 6, cfg, invert)
    assert (last_ae[6:] == 255 - video[5]).all()
    with pytest.raises(ValueError, match="nearest-pose-ae needs an autoencoder"):
        baseline_video("nearest-pose-ae", video, poses, 6, cfg)


def test_parse_kinds_with_an_autoencoder():
    assert len(parse_kinds("all", autoencoder=True)) == 7
    assert parse_kinds("autoencoder,nearest-pose-ae", autoencoder=True) == (
        "autoencoder",
        "nearest-pose-ae",
    )
    with pytest.raises(ValueError, match=r"autoencoder needs an autoencoder \(--ae DIR\)"):
        parse_kinds("autoencoder")


def test_baseline_command_through_the_shipped_autoencoder(tmp_path, capsys):
    """`millivid baseline --ae`: the `autoencoder` kind is each generated frame encoded and
    decoded at level 0 by that autoencoder (bit for bit), the context is kept."""
    import torch

    from millivid.jobs.autoencoder import load_autoencoder, reconstruct_frames

    ae_dir = "checkpoints/mini/ae"
    rng = np.random.default_rng(1)
    video = rng.integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    gt = tmp_path / "gt"
    gt.mkdir()
    np.savez(
        gt / "v.npz",
        video=video,
        poses=np.zeros((10, 5), np.float32),
        actions=np.zeros(10, np.int64),
    )
    out = tmp_path / "rollouts"
    args = ["--gt-dir", str(gt), "--out", str(out), "--context", "4", "--device", "cpu"]
    assert main(["baseline", "--kind", "autoencoder", *args]) == 1
    assert "needs an autoencoder (--ae DIR)" in capsys.readouterr().err
    assert main(["baseline", "--kind", "autoencoder,nearest-pose-ae", *args, "--ae", ae_dir]) == 0
    model = load_autoencoder(ae_dir)
    got = np.load(out / "autoencoder" / "v.npz")["video"]
    assert (got[:4] == video[:4]).all()
    with torch.no_grad():
        want = model.decode(model.encode(torch.from_numpy(video[4:]))[0], 0).numpy()
    assert (got[4:] == want).all()
    chunked = reconstruct_frames(model, video[4:], batch=4).astype(int)  # batches of 4 and 2
    assert np.abs(chunked - want).max() <= 1  # float rounding may differ with the batch size
    assert not (want == video[4:]).all()  # the decoder is not the identity
    near = np.load(out / "nearest-pose-ae" / "v.npz")["video"]
    assert (near[4:] == reconstruct_frames(model, video[[0] * 6])).all()  # all poses equal: 1st


def test_frames_at_the_psnr_cap_are_named_per_method():
    from millivid.evaluate.outputs import capped_psnr_note

    rows = [
        *({"method": "nearest-pose", "psnr": p} for p in (100.0, 100.0, 21.0, 18.0)),
        *({"method": "model", "psnr": p} for p in (24.0, 99.9)),
    ]
    note = capped_psnr_note(rows)
    assert "capped at 100 dB; at the cap: nearest-pose 2 of 4 frames." in note
    assert "model" not in note
    assert capped_psnr_note(rows[2:]) == ""
