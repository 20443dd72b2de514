import numpy as np
import pytest
import torch

from millivid.autoencoder.model import HierarchicalAutoencoder
from millivid.cli import main
from millivid.data.videos import VideoRecord, save_video
from millivid.jobs.video_task import build_video_model
from millivid.presets import load_preset
from millivid.train import write_checkpoint
from millivid.typed_config import to_dict


def make_runs(tmp_path, method="millivid", attention="context-causal"):
    cfg = load_preset("tiny", [f"model.attention={attention}"])
    ae = HierarchicalAutoencoder(cfg.ae)
    write_checkpoint(tmp_path / "ae", ae.state_dict(), {"stage": "autoencoder", **to_dict(cfg)})
    model = build_video_model(cfg, method)
    with torch.no_grad():  # off adaLN-Zero's zero init, so that the video depends on the model
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.02)
    saved = {"stage": "video", "method": method, **to_dict(cfg)}
    write_checkpoint(tmp_path / "video", model.state_dict(), saved)
    return tmp_path / "video", tmp_path / "ae"


def model_for(cfg, method):
    return build_video_model(cfg, method).eval()


def run(video, ae, out, *extra):
    return main(
        [
            "generate",
            "--ckpt",
            str(video),
            "--ae",
            str(ae),
            "--seed",
            "3",
            "--context",
            "24",
            "--frames",
            "12",
            "--steps",
            "2",
            "--out",
            str(out),
            *extra,
        ]
    )


@pytest.mark.parametrize(
    "method", ["millivid", "framepack", "fullres", "upscale", "mirrored-framepack"]
)
def test_generate_writes_video_of_the_right_length(tmp_path, method, capsys):
    video, ae = make_runs(tmp_path, method)
    assert run(video, ae, tmp_path / "out" / "g") == 0
    printed = capsys.readouterr().out
    with np.load(tmp_path / "out" / "g.npz") as f:
        assert f["video"].shape == (36, 32, 32, 3)
        assert f["actions"].shape == (36,)
    assert "mp4:" in printed and (tmp_path / "out" / "g_plan.png").stat().st_size > 0


def test_resume_after_interruption_gives_the_same_video(tmp_path, monkeypatch):
    video, ae = make_runs(tmp_path)
    assert run(video, ae, tmp_path / "full") == 0
    import millivid.rollout.engine as engine

    original = engine.run_plan

    def interrupted(plan, store, denoiser, actions, **kw):
        after = kw["after_step"]

        def stop(i):
            after(i)
            if i == 4:
                raise KeyboardInterrupt

        return original(plan, store, denoiser, actions, **{**kw, "after_step": stop})

    monkeypatch.setattr("millivid.rollout.resumable.run_plan", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(video, ae, tmp_path / "part")
    from safetensors.torch import load_file

    state = load_file(str(tmp_path / "part.state.safetensors"))  # saved on the interruption
    assert int(state["next_step"]) == 5
    monkeypatch.setattr("millivid.rollout.resumable.run_plan", original)
    assert run(video, ae, tmp_path / "part") == 0
    with np.load(tmp_path / "full.npz") as a, np.load(tmp_path / "part.npz") as b:
        assert np.array_equal(a["video"], b["video"])


def test_kv_reuse_matches_recompute(tmp_path):
    video, ae = make_runs(tmp_path)
    assert run(video, ae, tmp_path / "reuse") == 0
    assert run(video, ae, tmp_path / "recompute", "--no-kv-reuse") == 0
    with np.load(tmp_path / "reuse.npz") as a, np.load(tmp_path / "recompute.npz") as b:
        diff = np.abs(a["video"].astype(int) - b["video"].astype(int))
        assert diff.max() <= 2  # float32 reordering, through the decoder and uint8 rounding


def test_compiled_rollout_equals_eager_and_compiles_once_per_model(tmp_path, monkeypatch):
    """--compile wraps the model's three sampling methods once (not per rollout step or batch)
    and changes only rounding. aot_eager stands in for inductor, whose cold CPU compile of the
    tiny model takes ~30 s."""
    from millivid.model.ddim_sampler import compile_for_sampling
    from millivid.rollout.generate import load_video_model

    compiled, real = [], torch.compile

    def aot_eager(fn):
        compiled.append(fn.__name__)
        return real(fn, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", aot_eager)
    video, ae = make_runs(tmp_path)
    assert run(video, ae, tmp_path / "eager", "--no-compile") == 0
    assert compiled == []
    assert run(video, ae, tmp_path / "compiled", "--compile") == 0
    assert sorted(compiled) == ["encode_context", "forward", "forward_targets"]
    with np.load(tmp_path / "eager.npz") as a, np.load(tmp_path / "compiled.npz") as b:
        diff = np.abs(a["video"].astype(int) - b["video"].astype(int))
        assert diff.max() <= 2
    model, _, _ = load_video_model(video, "cpu")
    compile_for_sampling(compile_for_sampling(model))  # e.g. one DiTDenoiser per batch
    assert len(compiled) == 6


def test_bf16_runs_the_model_under_autocast_on_the_cpu(tmp_path, monkeypatch):
    """--bf16 reaches the sampler (autocast around the model, the default off on the CPU) and
    changes the video by bf16 rounding only."""
    import millivid.model.ddim_sampler as sampler

    seen, real = [], torch.autocast

    def autocast(device, dtype, enabled):
        seen.append(enabled)
        return real(device, dtype=dtype, enabled=enabled)

    monkeypatch.setattr(sampler.torch, "autocast", autocast)
    video, ae = make_runs(tmp_path)
    assert run(video, ae, tmp_path / "fp32") == 0
    assert seen and not any(seen)
    seen.clear()
    assert run(video, ae, tmp_path / "bf16", "--bf16") == 0
    assert seen and all(seen)
    with np.load(tmp_path / "fp32.npz") as a, np.load(tmp_path / "bf16.npz") as b:
        assert np.array_equal(a["video"][:24], b["video"][:24])  # the context, as given
        diff = np.abs(a["video"][24:].astype(int) - b["video"][24:].astype(int))
        assert diff.any() and diff.max() <= 3


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    video, ae = make_runs(tmp_path)
    assert (
        main(
            [
                "generate",
                "--ckpt",
                str(video),
                "--ae",
                str(ae),
                "--seed",
                "1",
                "--context",
                "24",
                "--frames",
                "8",
                "--method",
                "framepack",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 1
    )
    assert "trained for 'millivid'" in capsys.readouterr().err
    np.save(tmp_path / "a.npy", np.array([0, 5, 1]))
    assert run(video, ae, tmp_path / "y", "--actions", str(tmp_path / "a.npy")) == 1
    assert "actions" in capsys.readouterr().err
    assert (
        main(
            [
                "generate",
                "--ckpt",
                str(ae),
                "--ae",
                str(ae),
                "--seed",
                "1",
                "--out",
                str(tmp_path / "z"),
            ]
        )
        == 1
    )
    assert "not a video-model checkpoint" in capsys.readouterr().err


def test_sigterm_lets_the_running_step_finish_then_stops(tmp_path, monkeypatch):
    """SIGTERM (twice, as GNU `timeout` sends it) after step 1 does not interrupt anything: the
    next step runs to its end, the store is saved after it and the rollout stops there."""
    import os
    import signal

    video, ae = make_runs(tmp_path)
    import millivid.rollout.engine as engine

    original = engine.run_plan

    def signalled(plan, store, denoiser, actions, **kw):
        def on_step(p):
            kw["on_step"](p)
            if p.step == 2:  # steps 0 and 1 are done
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)

        return original(plan, store, denoiser, actions, **{**kw, "on_step": on_step})

    monkeypatch.setattr("millivid.rollout.resumable.run_plan", signalled)
    with pytest.raises(KeyboardInterrupt, match="between steps on signal 15"):
        run(video, ae, tmp_path / "part")
    from safetensors.torch import load_file

    state = load_file(str(tmp_path / "part.state.safetensors"))
    assert int(state["next_step"]) == 3  # step 2 ran to its end after the signal


def test_without_imageio_ffmpeg_the_rollout_is_kept_and_only_the_mp4_skipped(
    tmp_path, monkeypatch, capsys
):
    import json
    import sys

    video, ae = make_runs(tmp_path)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import now raises ImportError
    with pytest.warns(UserWarning, match="g.mp4 not written: mp4 files need the imageio-ffmpeg"):
        assert run(video, ae, tmp_path / "out" / "g") == 0
    with np.load(tmp_path / "out" / "g.npz") as f:
        assert f["video"].shape == (36, 32, 32, 3)
    record = json.loads((tmp_path / "out" / "g.json").read_text())
    assert record["context"] == 24 and record["frames"] == 12
    # "steps" counts the plan's rollout steps; the sampler's settings have their own names
    assert record["steps"] == record["rollout_steps"] > 0 and record["ddim_steps"] == 2
    assert record["guidance"] == 1.0 and record["sample_eta"] == 0.0
    assert not (tmp_path / "out" / "g.mp4").exists()
    assert "mp4:" not in capsys.readouterr().out


def test_an_output_that_cannot_be_written_is_refused_before_the_rollout(tmp_path, capsys):
    video, ae = make_runs(tmp_path)
    (tmp_path / "g.mp4").mkdir()  # the mp4 would be written last, after the whole rollout
    assert run(video, ae, tmp_path / "g") == 1
    assert f"{tmp_path / 'g.mp4'}: is a folder, not a file" in capsys.readouterr().err
    assert not list(tmp_path.glob("g.*.safetensors")) and not (tmp_path / "g.npz").exists()


def test_hierarchical_framepack_rolls_out_reading_re_encoded_coarse_levels():
    """FramePack's plan over hierarchical levels generates level 0 only; the coarse levels of
    each generated frame are its frame re-encoded, which later steps read as context."""
    from millivid.rollout.request import GenerateRequest
    from millivid.rollout.resumable import ResumableRollout, prepare_rollout

    cfg = load_preset("tiny")
    ae = HierarchicalAutoencoder(cfg.ae).eval()
    model = build_video_model(cfg, "hierarchical-framepack").eval()
    with torch.no_grad():  # off adaLN-Zero's zero init, so that the frames depend on the model
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.02)
    rng = np.random.default_rng(0)
    req = GenerateRequest(
        frames=rng.integers(0, 256, (2, 24, 32, 32, 3), dtype=np.uint8),
        actions=rng.integers(0, 3, (2, 30)),
        context=24,
        length=6,
        steps=1,
    )
    rollout = prepare_rollout(req, model, cfg, "hierarchical-framepack", ae)
    assert rollout.derive is not None
    generated = ResumableRollout(rollout, req, {}, ae).run("test", progress=False)
    assert generated.shape[:2] == (2, 6)
    store, new = rollout.store, slice(24, 30)
    with torch.no_grad():
        frames = ae.decode(store.levels[0][:, new].flatten(0, 1), 0)
        again = ae.encode(frames)
    for level in range(1, len(store.levels)):
        held = store.levels[level][:, new].flatten(0, 1)
        assert held.abs().sum() > 0
        torch.testing.assert_close(held, again[level].to(held.dtype))
    # the other methods derive nothing
    assert prepare_rollout(req, model_for(cfg, "framepack"), cfg, "framepack", ae).derive is None


def test_the_attention_kernel_can_be_chosen_and_an_unknown_one_is_a_clear_error(
    tmp_path, monkeypatch, capsys
):
    """``millivid --sdpa NAME`` (or MILLIVID_SDPA) runs every model with that SDPA kernel: the
    math kernel generates the same video as PyTorch's choice within float error; where the
    kernel cannot take the inputs (cuDNN on a CPU, or a float32 autoencoder on a GPU) the math
    kernel runs instead; an unknown name is a one-line error."""
    video, ae = make_runs(tmp_path)
    src = tmp_path / "in.npz"
    save_video(
        src, VideoRecord(video=np.zeros((30, 32, 32, 3), np.uint8), actions=np.zeros(30, np.int64))
    )
    base = ["generate", "--ckpt", str(video), "--ae", str(ae), "--video", str(src)]
    base += ["--context", "24", "--frames", "4", "--steps", "1"]
    assert main([*base, "--out", str(tmp_path / "auto")]) == 0
    assert main(["--sdpa", "math", *base, "--out", str(tmp_path / "math")]) == 0
    with np.load(tmp_path / "auto.npz") as a, np.load(tmp_path / "math.npz") as m:
        assert np.abs(a["video"].astype(int) - m["video"].astype(int)).max() <= 1
    assert main(["--sdpa", "cudnn", *base, "--out", str(tmp_path / "cudnn")]) == 0
    with np.load(tmp_path / "cudnn.npz") as c, np.load(tmp_path / "math.npz") as m:
        assert np.array_equal(c["video"], m["video"])
    capsys.readouterr()
    monkeypatch.setenv("MILLIVID_SDPA", "fastest")
    assert main([*base, "--out", str(tmp_path / "env")]) == 1
    assert "MILLIVID_SDPA='fastest': expected one of auto, cudnn" in capsys.readouterr().err
