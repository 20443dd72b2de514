"""`millivid reproduce --set diffusion.guidance=…` and `--sample-context-noise` reach the rollouts
(the checkpoint's config holds the settings the model was trained with, not the ones a run asks
for)."""

from dataclasses import replace

import pytest

from millivid.presets import REPRODUCE_PRESETS, load_preset
from millivid.reproduce import reproduce


def fake_rollouts(monkeypatch, trained) -> list:
    """reproduce's rollout stage without a model: the calls it makes, in order."""
    calls = []
    monkeypatch.setattr(
        "millivid.reproduce.load_video_model", lambda run, device: (None, trained, "millivid")
    )
    monkeypatch.setattr("millivid.reproduce.load_autoencoder", lambda run, device: None)
    monkeypatch.setattr(
        "millivid.reproduce.check_autoencoder",
        lambda path, ae_path, ae: calls.append(("check", path, ae_path)),
    )
    monkeypatch.setattr(
        "millivid.reproduce.rollout_folder",
        lambda *args, **kwargs: calls.append({"cfg": args[3], **kwargs}),
    )
    return calls


def test_the_run_configs_guidance_reaches_the_rollouts(tmp_path, monkeypatch):
    trained = load_preset("tiny")  # the checkpoint's config: guidance 1
    calls = fake_rollouts(monkeypatch, trained)
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "millivid.png").write_bytes(b"")  # drawn already
    cfg = load_preset("tiny", ["diffusion.guidance=2.5"])
    rcfg = replace(REPRODUCE_PRESETS["tiny"], variants=("millivid",), stages=("rollout",))
    reproduce(tmp_path, cfg, rcfg, device="cpu", log=lambda _: None)
    assert trained.diffusion.guidance == 1.0
    # the autoencoder is checked against the model's before its rollouts
    assert calls[0] == ("check", tmp_path / "video" / "millivid", tmp_path / "ae")
    assert [c.get("guidance") for c in calls[1:]] == [2.5]


@pytest.mark.parametrize("asked", [None, 0.0, 0.25])
def test_sample_context_noise_is_the_checkpoints_unless_the_run_asks(tmp_path, monkeypatch, asked):
    trained = load_preset("tiny", ["diffusion.sample_context_noise=0.1"])
    calls = fake_rollouts(monkeypatch, trained)
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "millivid.png").write_bytes(b"")
    rcfg = replace(
        REPRODUCE_PRESETS["tiny"],
        variants=("millivid",),
        stages=("rollout",),
        sample_context_noise=asked,
    )
    reproduce(tmp_path, load_preset("tiny"), rcfg, device="cpu", log=lambda _: None)
    assert calls[1]["context_noise"] == asked  # None: the checkpoint's (rollout_latents)
