"""`millivid reproduce --set diffusion.guidance=…` reaches the rollouts (the checkpoint's config
holds the guidance the model was trained with, not the one a run asks for)."""

from dataclasses import replace

from millivid.presets import REPRODUCE_PRESETS, load_preset
from millivid.reproduce import reproduce


def test_the_run_configs_guidance_reaches_the_rollouts(tmp_path, monkeypatch):
    trained = load_preset("tiny")  # the checkpoint's config: guidance 1
    calls = []
    monkeypatch.setattr(
        "millivid.reproduce.load_video_model", lambda run, device: (None, trained, "millivid")
    )
    monkeypatch.setattr("millivid.reproduce.load_ae", lambda run, device: None)
    monkeypatch.setattr(
        "millivid.reproduce.check_autoencoder",
        lambda path, ae_path, ae: calls.append(("check", path, ae_path)),
    )
    monkeypatch.setattr(
        "millivid.reproduce.rollout_folder", lambda *args, **kwargs: calls.append(kwargs)
    )
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "millivid.png").write_bytes(b"")  # drawn already
    cfg = load_preset("tiny", ["diffusion.guidance=2.5"])
    rcfg = replace(REPRODUCE_PRESETS["tiny"], variants=("millivid",), stages=("rollout",))
    reproduce(tmp_path, cfg, rcfg, device="cpu", log=lambda _: None)
    assert trained.diffusion.guidance == 1.0
    # the autoencoder is checked against the model's before its rollouts
    assert calls[0] == ("check", tmp_path / "video" / "millivid", tmp_path / "ae")
    assert [c.get("guidance") for c in calls[1:]] == [2.5]
