"""A rollout resumes only the state its own request saved; non-finite guidance and latents are
errors, never a black video."""

import json
import shutil

import numpy as np
import pytest
import torch

from millivid.cli import main
from millivid.data.videos import VideoRecord, save_video
from tests.test_generate import make_runs


def small_video(path, frames=28, seed=0):
    """A random 32x32 video .npz (the tiny preset's size) with actions."""
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 256, (frames, 32, 32, 3), dtype=np.uint8)
    save_video(path, VideoRecord(video=video, actions=rng.integers(0, 3, frames)))
    return path


def generate(ckpt, ae, npz, out, *extra):
    """``millivid generate`` of 4 frames after 24 (6 rollout steps of 1 DDIM step)."""
    args = ["generate", "--ckpt", str(ckpt), "--ae", str(ae), "--video", str(npz)]
    args += ["--context", "24", "--frames", "4", "--steps", "1", "--out", str(out)]
    return main([*args, *extra])


def stop_after(monkeypatch, step, call=0):
    """Make rollout number ``call`` (0: the next one) stop with Ctrl-C after ``step``, as a user
    would; the rollout saves its state there. Returns the real ``run_plan``."""
    import millivid.rollout.engine as engine

    original, calls = engine.run_plan, []

    def interrupted(plan, store, denoiser, actions, **kw):
        after, this = kw["after_step"], len(calls)
        calls.append(this)

        def stop(i):
            after(i)
            if i == step and this == call:
                raise KeyboardInterrupt

        return original(plan, store, denoiser, actions, **{**kw, "after_step": stop})

    monkeypatch.setattr("millivid.rollout.resumable.run_plan", interrupted)
    return original


def test_a_rerun_with_other_settings_refuses_the_saved_state(tmp_path, monkeypatch, capsys):
    ckpt, ae = make_runs(tmp_path)
    other, _ = make_runs(tmp_path / "other")  # other random weights
    shifted = tmp_path / "shifted"  # the same weights, another schedule per level
    shutil.copytree(ckpt, shifted)
    config = next(shifted.rglob("config.json"))
    saved = json.loads(config.read_text())
    saved["diffusion"]["level_shift"] = 0.5
    config.write_text(json.dumps(saved))
    npz = small_video(tmp_path / "in.npz")
    stop_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        generate(ckpt, ae, npz, tmp_path / "g")
    state = tmp_path / "g.state.safetensors"
    assert state.exists()
    capsys.readouterr()
    reruns = {
        "ddim_steps": (ckpt, "--steps", "2"),
        "seed": (ckpt, "--sample-seed", "1"),
        "guidance": (ckpt, "--cfg", "1.5"),
        "sample_context_noise": (ckpt, "--context-noise", "0.3"),
        "sample_eta": (ckpt, "--eta", "1"),
        "context": (ckpt, "--context", "20"),
        "model": (other,),
        "level_shift": (shifted,),
    }
    for key, (model, *extra) in reruns.items():
        assert generate(model, ae, npz, tmp_path / "g", *extra) == 1, key
        err = capsys.readouterr().err.strip()
        assert err.startswith("millivid generate: error: ") and "\n" not in err  # one line
        assert str(state) in err and f"differs in: {key}" in err and "delete it" in err
    assert state.exists() and not (tmp_path / "g.npz").exists()


@pytest.mark.parametrize(
    "method,attention", [("millivid", "context-causal"), ("hierarchical-framepack", "full")]
)
def test_the_same_request_resumes_and_a_finished_run_removes_its_state(
    method, attention, tmp_path, monkeypatch
):
    """Also hierarchical FramePack, whose saved state must hold the re-encoded coarse levels of
    the frames generated before the stop."""
    ckpt, ae = make_runs(tmp_path, method, attention)
    npz = small_video(tmp_path / "in.npz", frames=32)
    longer = ("--frames", "8")  # later steps read the coarse levels of frames made before the stop
    assert generate(ckpt, ae, npz, tmp_path / "full", *longer) == 0
    original = stop_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        generate(ckpt, ae, npz, tmp_path / "part", *longer)
    monkeypatch.setattr("millivid.rollout.resumable.run_plan", original)
    assert generate(ckpt, ae, npz, tmp_path / "part", *longer, "--no-kv-reuse") == 0  # rounding
    assert not (tmp_path / "part.state.safetensors").exists()
    with np.load(tmp_path / "full.npz") as a, np.load(tmp_path / "part.npz") as b:
        assert np.abs(a["video"].astype(int) - b["video"].astype(int)).max() <= 2


def test_a_folder_rollout_resumes_only_its_own_batch_state(tmp_path, monkeypatch):
    """The second batch of a folder, interrupted: another request is refused, the same one
    resumes with the batch's own noise seed (not the seed of its place among the files left)."""
    from millivid.jobs.autoencoder import load_autoencoder
    from millivid.rollout.folder import rollout_folder
    from millivid.rollout.generate import load_video_model

    ckpt, ae_run = make_runs(tmp_path)
    model, cfg, method = load_video_model(ckpt, "cpu")
    ae = load_autoencoder(ae_run, "cpu")
    gt = tmp_path / "gt"
    gt.mkdir()
    for i in range(2):
        small_video(gt / f"v{i}.npz", seed=i)

    def roll(out, steps=1):
        kw = dict(context=24, length=4, batch=1, steps=steps, seed=5)
        return rollout_folder(gt, out, model, cfg, method, ae, **kw)

    roll(tmp_path / "full")
    original = stop_after(monkeypatch, 2, call=1)
    with pytest.raises(KeyboardInterrupt):
        roll(tmp_path / "part")
    monkeypatch.setattr("millivid.rollout.resumable.run_plan", original)
    state = tmp_path / "part" / ".batch-v1.state.safetensors"
    with pytest.raises(ValueError, match="differs in: ddim_steps.*delete it"):
        roll(tmp_path / "part", steps=2)
    roll(tmp_path / "part")
    assert not state.exists()
    with np.load(tmp_path / "full" / "v1.npz") as a, np.load(tmp_path / "part" / "v1.npz") as b:
        assert np.array_equal(a["video"], b["video"])


@pytest.mark.parametrize("scale", ["nan", "inf", "-inf", "1e30", "-500"])
def test_non_finite_guidance_is_refused_before_any_work(tmp_path, scale, capsys):
    """A guidance scale of NaN, inf or one far past any useful value (1e30: black frames)."""
    ckpt, ae = make_runs(tmp_path)
    npz = small_video(tmp_path / "in.npz")
    assert generate(ckpt, ae, npz, tmp_path / "g", f"--cfg={scale}") == 1
    shown = float(scale)
    assert f"--cfg {shown}: the guidance scale must be a finite number" in capsys.readouterr().err
    assert not list(tmp_path.glob("g*"))


@pytest.mark.parametrize("poison", [float("nan"), 1e6], ids=["nan", "exploded"])
def test_nan_latents_stop_the_rollout_naming_the_step_and_write_nothing(
    poison, tmp_path, monkeypatch, capsys
):
    """NaN latents, and finite ones that blew up (seen from a bf16 rollout on a GPU), stop the
    rollout before anything is decoded."""
    import millivid.rollout.engine as engine

    original = engine.run_plan

    def poisoned(plan, store, denoiser, actions, **kw):
        def denoise(step, context, acts, noise, memory=None, generator=None):
            out = denoiser(step, context, acts, noise, memory)
            return out * poison if step is plan[3] else out

        return original(plan, store, denoise, actions, **kw)

    monkeypatch.setattr("millivid.rollout.resumable.run_plan", poisoned)
    ckpt, ae = make_runs(tmp_path)
    npz = small_video(tmp_path / "in.npz")
    assert generate(ckpt, ae, npz, tmp_path / "g") == 1
    err = capsys.readouterr().err
    assert "rollout step 3 of 6 (level 0, frames 25-25) produced non-finite or exploded" in err
    assert not list(tmp_path.glob("g*"))


def test_an_autoencoder_decoding_to_nan_is_an_error_not_black_frames():
    from millivid.autoencoder.model import HierarchicalAutoencoder
    from millivid.presets import load_preset
    from millivid.rollout.resumable import decode_frames

    ae = HierarchicalAutoencoder(load_preset("tiny").ae).eval()
    with torch.no_grad():
        ae.to_pixels.bias.fill_(float("nan"))  # a broken decoder
    h, w = ae.level_shape(0)
    latents = torch.zeros(1, 2, h, w, ae.cfg.channels)
    with pytest.raises(ValueError, match="decoded finite latents to non-finite pixels"):
        decode_frames(ae, latents)
