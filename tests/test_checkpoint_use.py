"""A checkpoint no one should use is never written, and never used: a run that fails before its
first step leaves no checkpoint; untrained (step 0) and uncalibrated checkpoints and a truncated
trainer state are refused by every command that reads them, naming the file."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from millivid.autoencoder.model import HierarchicalAutoencoder
from millivid.cli import main
from millivid.jobs.autoencoder import load_autoencoder
from millivid.presets import REPRODUCE_PRESETS, load_preset
from millivid.reproduce import make_run, stage_ae
from millivid.train import CheckpointError, load_checkpoint, train, write_checkpoint
from millivid.train.checkpoint import load_trainer_state
from millivid.typed_config import to_dict
from tests.test_generate import make_runs
from tests.test_train import CFG, ToyTask

TINY_CFG = load_preset("tiny")


class BrokenData(ToyTask):
    """A dataset whose first batch cannot be read (a corrupt latent file)."""

    def batch(self, step, generator):
        raise ValueError("cache/000002.safetensors: cannot read latent file")


def test_a_run_that_fails_before_its_first_step_writes_no_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="cannot read latent file"):
        train(BrokenData(), CFG, tmp_path, config={}, device="cpu", show_progress=False)
    assert not (tmp_path / "checkpoint").exists()


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_every_consumer_refuses_an_untrained_checkpoint_naming_it(tmp_path, capsys):
    video, ae = make_runs(tmp_path)
    weights, config = load_checkpoint(video)
    write_checkpoint(video, weights, config, {"step": 0})  # left by an older failed run
    argv = ["--seed", "3", "--context", "8", "--frames", "4", "--device", "cpu"]
    assert main(["generate", "--ckpt", str(video), "--ae", str(ae), *argv,
                 "--out", str(tmp_path / "g")]) == 1  # fmt: skip
    line = one_error(capsys)
    assert f"{video / 'checkpoint'}: untrained weights (saved at step 0" in line
    assert main(["demo", "--ckpt", str(video), "--ae", str(ae), "--context", "8", "--frames",
                 "4", "--out", str(tmp_path / "d")]) == 1  # fmt: skip
    assert "untrained weights (saved at step 0" in one_error(capsys)
    weights, config = load_checkpoint(ae)
    write_checkpoint(ae, weights, config, {"step": 0})
    with pytest.raises(CheckpointError, match=r"checkpoint: untrained weights \(saved at step 0"):
        load_autoencoder(ae)
    out = tmp_path / "latents"
    assert main(["ae", "encode", "--ckpt", str(ae), "--data", str(tmp_path), "--out",
                 str(out)]) == 1  # fmt: skip
    assert f"{ae / 'checkpoint'}: untrained weights" in one_error(capsys)
    assert not out.exists()


def test_an_autoencoder_stopped_before_calibration_is_refused(tmp_path, capsys):
    """A SIGTERM-stopped ``ae train`` saves its weights but never sets the latent statistics."""
    ae = HierarchicalAutoencoder(TINY_CFG.ae)
    config = {"stage": "autoencoder", **to_dict(TINY_CFG)}
    write_checkpoint(tmp_path / "ae", ae.state_dict(), config, {"step": 168})
    with pytest.raises(CheckpointError) as err:
        load_autoencoder(tmp_path / "ae")
    assert str(err.value).startswith(
        f"{tmp_path / 'ae' / 'checkpoint'}: an autoencoder whose latent statistics were never "
        "set (its training stopped at step 168 of 200, before calibration)"
    )
    assert f"millivid ae train --resume --out {tmp_path / 'ae'}" in str(err.value)
    argv = ["ae", "encode", "--ckpt", str(tmp_path / "ae"), "--data", str(tmp_path)]
    assert main([*argv, "--out", str(tmp_path / "latents")]) == 1
    assert "latent statistics were never set" in one_error(capsys)
    # a reconstruction does not need them: `ae recon` shows the run as it is
    video = tmp_path / "clip.npz"
    np.savez(video, video=np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), np.uint8))
    recon = ["ae", "recon", "--ckpt", str(tmp_path / "ae"), "--video", str(video)]
    assert main([*recon, "--out", str(tmp_path / "recon.png")]) == 0
    assert (tmp_path / "recon.png").stat().st_size > 0
    ae.latent_std.fill_(2.0)  # calibrated
    write_checkpoint(tmp_path / "ae", ae.state_dict(), config, {"step": 200})
    assert load_autoencoder(tmp_path / "ae").latent_std[0, 0] == 2.0


def test_a_truncated_trainer_state_is_named(tmp_path, capsys):
    kwargs = dict(config={}, device="cpu", show_progress=False)
    train(ToyTask(), replace(CFG, steps=2), tmp_path, **kwargs)
    state = tmp_path / "checkpoint" / "state.pt"
    state.write_bytes(state.read_bytes()[:300])  # a copy cut short
    with pytest.raises(CheckpointError, match=f"{state}: unreadable trainer state"):
        train(ToyTask(), replace(CFG, steps=4), tmp_path, resume=True, **kwargs)


def test_a_corrupt_log_line_is_named_and_a_torn_last_line_dropped(tmp_path):
    kwargs = dict(config={}, device="cpu", show_progress=False)
    train(ToyTask(), replace(CFG, steps=2), tmp_path, **kwargs)
    log = tmp_path / "metrics.jsonl"
    good = log.read_text()
    log.write_text(good + '{"step": 3, "lo')  # killed while appending a line
    train(ToyTask(), replace(CFG, steps=3), tmp_path, resume=True, **kwargs)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]
    log.write_text("{oops\n" + log.read_text())
    with pytest.raises(ValueError, match=rf"^{log}:1: not a JSON line .*fix or delete that line"):
        train(ToyTask(), replace(CFG, steps=4), tmp_path, resume=True, **kwargs)


def test_reproduce_finishes_an_autoencoder_stopped_between_its_last_step_and_calibration(
    tmp_path,
):
    """Such a run is not "trained": its ae stage resumes it, which only calibrates it."""
    cfg = replace(TINY_CFG, ae_train=replace(TINY_CFG.ae_train, steps=2, batch_size=4))
    rcfg = replace(REPRODUCE_PRESETS["tiny"], variants=("millivid",))
    run = make_run(tmp_path, cfg, rcfg, ae=None, device="cpu", log=lambda _: None)
    assert main(["data", "make", "--preset", "tiny", "--videos", "2", "--frames", "8",
                 "--out", str(run.train_dir)]) == 0  # fmt: skip
    stage_ae(run)
    ae_run = run.ae_runs["hierarchical"]
    calibrated = load_autoencoder(ae_run).latent_std.clone()
    weights, config = load_checkpoint(ae_run)
    weights["latent_mean"].zero_()
    weights["latent_std"].fill_(1.0)  # as saved when stopped before calibration
    write_checkpoint(ae_run, weights, config, load_trainer_state(ae_run))
    with pytest.raises(CheckpointError, match="latent statistics were never set"):
        load_autoencoder(ae_run)
    stage_ae(run)
    assert torch.equal(load_autoencoder(ae_run).latent_std, calibrated)
