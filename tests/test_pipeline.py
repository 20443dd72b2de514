"""The Python API: ``millivid.load`` -> ``pipe(context, actions)`` -> ``pipe.save``.

The shipped mini model continues a rendered world video (few frames, one DDIM step); tiny
untrained models check that a call gives exactly what the rollout functions and ``millivid
generate`` give, the save/load round trip, batching and the errors.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import millivid
from millivid.autoencoder.model import HierarchicalAutoencoder
from millivid.cli import main
from millivid.jobs.autoencoder import load_autoencoder
from millivid.jobs.video_task import build_video_model
from millivid.model import NO_ACTION
from millivid.pipeline import SHIPPED_AE
from millivid.presets import load_preset
from millivid.rollout.request import GenerateRequest, world_video
from millivid.rollout.resumable import decode_frames, rollout_latents
from millivid.train import write_checkpoint
from millivid.typed_config import to_dict
from millivid.world import TEST_SEED_OFFSET

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints" / "mini" / "millivid"
CONTEXT, FRAMES = 16, 3  # shipped model: 4 rollout steps (one per level), ~8 s on a CPU


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


@pytest.fixture(scope="module")
def shipped():
    pipe = millivid.load(SHIPPED, device="cpu")
    record = world_video(pipe.cfg, TEST_SEED_OFFSET + 3, CONTEXT, FRAMES)
    return pipe, record


def test_shipped_model_continues_a_world_video(shipped):
    pipe, record = shipped
    shipped_ae = load_autoencoder(SHIPPED_AE, "cpu").state_dict()
    assert all(torch.equal(v, shipped_ae[k]) for k, v in pipe.ae.state_dict().items())
    out = pipe(record.video[:CONTEXT], record.actions, poses=record.poses, steps=1, seed=5)
    assert out.shape == (FRAMES, 64, 64, 3) and out.dtype == np.uint8
    assert out.std() > 20  # a picture, not a flat or black frame
    truth = record.video[CONTEXT:]
    # measured: 23-25 dB against the true frames, 10.5 dB against another world's frames
    assert min(psnr(o, t) for o, t in zip(out, truth)) > 18


def test_shipped_model_needs_poses(shipped):
    pipe, record = shipped
    with pytest.raises(ValueError, match="conditioned on camera poses.*'poses'"):
        pipe(record.video[:CONTEXT], record.actions, steps=1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"context_frames": "float"}, r"context_frames: expected uint8 \[T, 64, 64, 3\].*float32"),
        ({"context_frames": "small"}, r"context_frames: .*got uint8 \(16, 32, 32, 3\)"),
        ({"actions": "2d"}, r"actions: expected \[T'\] for these context frames, got \(1, 19\)"),
        ({"actions": "short", "frames": 3}, r"actions: 17 given, need at least .* = 19"),
        ({"poses": "4 columns"}, r"poses: expected float \[T, 5\].*got \(19, 4\)"),
        ({"batch": "actions of 3"}, r"actions: expected \[2, T'\] .*got \(3, 19\)"),
        ({"frames": 0}, r"frames=0: nothing to generate"),
    ],
)
def test_bad_inputs_name_the_argument_and_its_shape(shipped, change, message):
    pipe, record = shipped
    kwargs = {
        "context_frames": record.video[:CONTEXT],
        "actions": record.actions,
        "poses": record.poses,
        "frames": change.get("frames"),
    }
    if change.get("context_frames") == "float":
        kwargs["context_frames"] = kwargs["context_frames"].astype(np.float32)
    if change.get("context_frames") == "small":
        kwargs["context_frames"] = kwargs["context_frames"][:, ::2, ::2]
    if change.get("actions") == "2d":
        kwargs["actions"] = record.actions[None]
    if change.get("actions") == "short":
        kwargs["actions"] = record.actions[:17]
    if change.get("poses"):
        kwargs["poses"] = record.poses[:, :4]
    if change.get("batch"):
        kwargs["context_frames"] = np.stack([record.video[:CONTEXT]] * 2)
        kwargs["actions"] = np.stack([record.actions] * 3)
        kwargs["poses"] = np.stack([record.poses] * 2)
    with pytest.raises(ValueError, match=message):
        pipe(**kwargs, steps=1)


def test_a_copied_mini_model_falls_back_to_the_shipped_autoencoder(tmp_path):
    for name in ("model.safetensors", "config.json"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    pipe = millivid.load(tmp_path, device="cpu")
    shipped_ae = load_autoencoder(SHIPPED_AE, "cpu").state_dict()
    assert all(torch.equal(v, shipped_ae[k]) for k, v in pipe.ae.state_dict().items())


def make_runs(root: Path, ae_overrides: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """Untrained tiny video model and autoencoder checkpoints: root/video and root/ae."""
    cfg = load_preset("tiny")
    torch.manual_seed(0)
    ae_cfg = load_preset("tiny", list(ae_overrides))
    ae = HierarchicalAutoencoder(ae_cfg.ae)
    write_checkpoint(root / "ae", ae.state_dict(), {"stage": "autoencoder", **to_dict(ae_cfg)})
    model = build_video_model(cfg, "millivid")
    with torch.no_grad():  # off adaLN-Zero's zero init, so that the video depends on the model
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.02)
    saved = {"stage": "video", "method": "millivid", **to_dict(cfg)}
    write_checkpoint(root / "video", model.state_dict(), saved)
    return root / "video", root / "ae"


@pytest.fixture
def tiny(tmp_path):
    video, _ = make_runs(tmp_path)
    pipe = millivid.load(video)  # finds tmp_path/ae beside it
    return pipe, world_video(pipe.cfg, 3, 24, 5)  # 8 rollout steps


def test_a_call_gives_what_the_rollout_functions_give(tiny, capsys):
    pipe, record = tiny
    out = pipe(record.video[:24], record.actions, steps=2, seed=7)  # frames: 29 - 24 actions
    assert capsys.readouterr().err == ""  # no progress bar unless asked for
    assert out.shape == (5, 32, 32, 3) and out.dtype == np.uint8
    req = GenerateRequest(record.video[None, :24], record.actions[None], 24, 5, seed=7, steps=2)
    latents = rollout_latents(req, pipe.model, pipe.cfg, pipe.method, pipe.ae)
    assert np.array_equal(out, decode_frames(pipe.ae, latents)[0])
    other_seed = pipe(record.video[:24], record.actions, steps=2, seed=8)
    assert not np.array_equal(out, other_seed)
    bf16 = pipe(record.video[:24], record.actions, steps=2, seed=7, bf16=True)
    diff = np.abs(bf16.astype(int) - out.astype(int))
    assert diff.any() and diff.max() <= 3  # bf16 rounding only


def test_a_batch_rolls_out_together(tiny, capsys):
    pipe, record = tiny
    single = pipe(record.video[:24], record.actions, frames=4, steps=2)
    frames = np.stack([record.video[:24], record.video[:24][::-1]])
    actions = np.stack([record.actions, record.actions[::-1]])
    out = pipe(frames, actions, frames=4, steps=2, progress=True)
    assert "generate millivid" in capsys.readouterr().err
    assert out.shape == (2, 4, 32, 32, 3)
    assert np.array_equal(out[0], single)  # the first video draws the same noise
    assert not np.array_equal(out[1], single)


def test_videos_without_actions_roll_out_with_the_null_action(tiny):
    """``millivid data import`` stores 3 ("none") for videos without actions; a model trained on
    them generates from them, and 3 is the embedding padding tokens get, not one of the moves."""
    pipe, record = tiny
    none = pipe(record.video[:24], np.full(29, NO_ACTION), steps=2, seed=7)
    assert none.shape == (5, 32, 32, 3)
    for move in (0, 1, 2):
        assert not np.array_equal(none, pipe(record.video[:24], np.full(29, move), steps=2, seed=7))
    with pytest.raises(
        ValueError, match=r"0 \(forward\), 1 \(left\), 2 \(right\) or 3 \(none.*4\.\.4"
    ):
        pipe(record.video[:24], np.full(29, 4), steps=2)


def test_save_then_load_gives_the_same_weights_and_frames(tiny, tmp_path):
    pipe, record = tiny
    folder = pipe.save(tmp_path / "saved")
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert names == ["ae", "ae/config.json", "ae/model.safetensors"] + [
        "config.json",
        "model.safetensors",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ae", "saved", "video"]  # no temps
    ae_config = json.loads((tmp_path / "ae" / "checkpoint" / "config.json").read_text())
    assert json.loads((folder / "ae" / "config.json").read_text()) == ae_config
    again = millivid.load(folder, device="cpu")
    assert (again.cfg, again.method) == (pipe.cfg, pipe.method)
    for a, b in ((pipe.model, again.model), (pipe.ae, again.ae)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    args = (record.video[:24], record.actions)
    assert np.array_equal(pipe(*args, steps=2), again(*args, steps=2))
    assert again.save(folder) == folder  # a previous save is replaced


def test_save_refuses_a_folder_holding_other_files(tiny, tmp_path):
    pipe, _ = tiny
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="out: exists and is not a saved pipeline"):
        pipe.save(tmp_path / "out")
    assert (tmp_path / "out" / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileExistsError):
        pipe.save(tmp_path / "video")  # a training run folder is not replaced either


def test_generate_command_finds_the_saved_autoencoder_and_matches_the_pipeline(tiny, tmp_path):
    pipe, record = tiny
    folder = pipe.save(tmp_path / "saved")
    flags = ["--seed", "3", "--context", "24", "--frames", "5", "--steps", "2"]
    assert main(["generate", "--ckpt", str(folder), *flags, "--out", str(tmp_path / "g")]) == 0
    with np.load(tmp_path / "g.npz") as f:
        written = f["video"]
    assert np.array_equal(written[24:], pipe(record.video[:24], record.actions, 5, steps=2))


def test_missing_autoencoder_names_the_folders_tried(tmp_path):
    video, ae = make_runs(tmp_path)
    shutil.rmtree(ae)
    with pytest.raises(FileNotFoundError, match=r"tried .*video/ae, .*/ae\): pass ae="):
        millivid.load(video)


def test_an_autoencoder_of_other_latents_is_refused_at_load(tmp_path):
    video, ae = make_runs(tmp_path, ("ae.channels=8",))
    with pytest.raises(ValueError, match=r"ae with .*video: autoencoder has 3 levels x 8 channels"):
        millivid.load(video, ae=ae)


def test_import_millivid_imports_no_torch():
    code = (
        "import sys, millivid\n"
        "assert 'torch' not in sys.modules, 'import millivid imported torch'\n"
        "assert {'load', 'Pipeline'} <= set(dir(millivid))\n"
        "assert callable(millivid.load) and 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_model_refuses_an_autoencoder_other_than_the_one_it_was_trained_with(tmp_path):
    from millivid.digest import weights_digest

    cfg = load_preset("tiny")
    for name, seed in (("ae", 0), ("other-ae", 1)):  # same shapes, other weights
        torch.manual_seed(seed)
        ae = HierarchicalAutoencoder(cfg.ae)
        write_checkpoint(tmp_path / name, ae.state_dict(), {"stage": "autoencoder", **to_dict(cfg)})
    digest = weights_digest(load_autoencoder(tmp_path / "ae", "cpu"))
    saved = {"stage": "video", "method": "millivid", "autoencoder_digest": digest, **to_dict(cfg)}
    write_checkpoint(tmp_path / "video", build_video_model(cfg, "millivid").state_dict(), saved)
    pipe = millivid.load(tmp_path / "video", ae=tmp_path / "ae", device="cpu")
    with pytest.raises(ValueError, match="is not the autoencoder .* was trained with"):
        millivid.load(tmp_path / "video", ae=tmp_path / "other-ae", device="cpu")
    pipe.save(tmp_path / "saved")  # the record travels with a saved pipeline
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["autoencoder_digest"] == (
        digest
    )
    millivid.load(tmp_path / "saved", device="cpu")
    args = ["generate", "--ckpt", str(tmp_path / "video"), "--ae", str(tmp_path / "other-ae")]
    args += ["--seed", "3", "--context", "8", "--frames", "4", "--out", str(tmp_path / "g")]
    assert main(args) == 1


def test_context_noise_overrides_the_configs_for_one_call(tiny):
    """``context_noise`` (``generate --context-noise``) replaces ``diffusion.sample_context_noise``
    (0 in the tiny config) for one rollout: 0 gives the default video, 0.5 another one."""
    pipe, record = tiny
    args = (record.video[:24], record.actions)
    default = pipe(*args, steps=2, seed=7)
    assert np.array_equal(pipe(*args, steps=2, seed=7, context_noise=0.0), default)
    assert not np.array_equal(pipe(*args, steps=2, seed=7, context_noise=0.5), default)
    with pytest.raises(ValueError, match=r"sample_context_noise = 1.5: a diffusion time in"):
        pipe(*args, steps=2, seed=7, context_noise=1.5)


def test_stochastic_ddim_rollouts_follow_the_seed(tiny):
    """``eta`` (``generate --eta``): stochastic DDIM steps draw their fresh noise from each
    rollout step's own stream, so a rollout is a function of its seed (the same twice, another
    with another seed) and eta = 0 is the deterministic default."""
    pipe, record = tiny
    args = (record.video[:24], record.actions)
    default = pipe(*args, steps=3, seed=7)
    assert np.array_equal(pipe(*args, steps=3, seed=7, eta=0.0), default)
    stochastic = pipe(*args, steps=3, seed=7, eta=1.0)
    assert not np.array_equal(stochastic, default)
    assert np.array_equal(pipe(*args, steps=3, seed=7, eta=1.0), stochastic)
    assert not np.array_equal(pipe(*args, steps=3, seed=8, eta=1.0), stochastic)
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"--eta .*: DDIM eta must be in \[0, 1\]"):
            pipe(*args, steps=3, seed=7, eta=bad)
