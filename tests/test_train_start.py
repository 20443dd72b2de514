"""Starting a training run: an existing run is never replaced without ``--overwrite`` (or
continued without ``--resume``), and training values no run can use are refused up front."""

from dataclasses import replace

import pytest

from millivid.cli import main
from millivid.train import load_checkpoint, train, write_checkpoint
from millivid.typed_config import ConfigError, to_dict
from tests.test_train import CFG, ToyTask
from tests.test_train_continue import TINY


def video_train_rc(tmp, out, *extra):
    """Exit code of ``millivid video train`` on the tiny preset (in-memory latents)."""
    from tests.test_video_task import synthetic_latents

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("millivid.cli.video.LatentCache", lambda path: synthetic_latents())
        args = ["video", "train", *TINY, "--latents", str(tmp), "--out", str(out)]
        return main([*args, "--set", "video_train.steps=3", *extra])


def snapshot(run):
    """The bytes of a run's log and weights."""
    weights = run / "checkpoint" / "model.safetensors"
    return (run / "metrics.jsonl").read_bytes(), weights.read_bytes()


def test_video_train_into_an_existing_run_needs_resume_or_overwrite(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    write_checkpoint(run, {}, {"stage": "video"}, {"step": 5})
    (run / "metrics.jsonl").write_text('{"step": 5, "loss": 1.0}\n')
    before = snapshot(run)
    assert video_train_rc(tmp_path, run) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.endswith(
        f"error: {run}: already holds a training run (checkpoint {run / 'checkpoint'}); pass "
        "--resume to continue it, --overwrite to replace it, or choose another --out"
    )
    assert snapshot(run) == before  # log and weights untouched
    assert video_train_rc(tmp_path, run, "--overwrite", "--resume") == 1
    assert "pass one" in capsys.readouterr().err
    seen = {}
    monkeypatch.setattr("millivid.cli.video.train", lambda *a, **kw: seen.update(kw) or run)
    assert video_train_rc(tmp_path, run, "--overwrite") == 0 and seen["overwrite"] is True


def test_overwrite_starts_a_new_run_in_the_folder(tmp_path):
    kwargs = dict(device="cpu", show_progress=False)
    train(ToyTask(), replace(CFG, steps=2), tmp_path, config={"toy": 1}, **kwargs)
    cfg = replace(CFG, steps=3)  # and another config, which --resume would refuse
    train(ToyTask(), cfg, tmp_path, config={"toy": 2}, overwrite=True, **kwargs)
    assert [r["step"] for r in _records(tmp_path)] == [1, 2, 3]
    assert load_checkpoint(tmp_path)[1] == {"toy": 2}


def _records(run):
    import json

    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_log_without_a_checkpoint_is_a_run_too(tmp_path):
    """A run killed before its first checkpoint still has its log: not replaced silently."""
    kwargs = dict(config={}, device="cpu", show_progress=False)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    with pytest.raises(ValueError, match=r"already holds a training run \(log .*metrics.jsonl\)"):
        train(ToyTask(), replace(CFG, steps=2), tmp_path, **kwargs)
    train(ToyTask(), replace(CFG, steps=2), tmp_path, overwrite=True, **kwargs)
    assert [r["step"] for r in _records(tmp_path)] == [1, 2]


def test_ae_train_refuses_an_existing_run_before_loading_any_data(tmp_path, capsys):
    run = tmp_path / "ae"
    write_checkpoint(run, {}, {"stage": "autoencoder"}, {"step": 5})
    argv = ["ae", "train", "--preset", "tiny", "--device", "cpu", "--data", str(tmp_path / "none")]
    assert main([*argv, "--out", str(run)]) == 1
    assert f"{run}: already holds a training run" in capsys.readouterr().err
    assert main([*argv, "--out", str(run), "--overwrite"]) == 1  # past the check: no data
    assert "dataset folder does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("steps", "-5", ">= 1"),
        ("steps", "0", ">= 1"),
        ("batch_size", "0", ">= 1"),
        ("lr", "0", "a finite number > 0"),
        ("lr", "nan", "a finite number > 0"),
        ("lr", "inf", "a finite number > 0"),
        ("warmup_steps", "-1", ">= 0"),
        ("cooldown", "1.5", "in [0, 1]"),
        ("cooldown", "-0.1", "in [0, 1]"),
    ],
)
def test_video_train_refuses_unusable_training_values_up_front(
    tmp_path, capsys, key, value, expected
):
    rc = video_train_rc(tmp_path, tmp_path / "run", "--set", f"video_train.{key}={value}")
    assert rc == 1
    err = capsys.readouterr().err
    assert f"error: video_train.{key} = " in err and f": must be {expected}" in err
    assert not (tmp_path / "run").exists()  # nothing written, no step-0 checkpoint


def test_the_trainer_itself_refuses_them_naming_the_config_section(tmp_path):
    cfg = replace(CFG, steps=-5)
    with pytest.raises(ConfigError, match=r"video_train\.steps = -5: must be >= 1"):
        train(ToyTask(), cfg, tmp_path, config={"video_train": to_dict(cfg)}, device="cpu")
    with pytest.raises(ConfigError, match=r"^train\.cooldown = 2\.0: must be in \[0, 1\]"):
        train(ToyTask(), replace(CFG, cooldown=2.0), tmp_path, config={}, device="cpu")
    assert not list(tmp_path.iterdir())


def test_ae_train_refuses_them_too(tmp_path, capsys):
    argv = ["ae", "train", "--preset", "tiny", "--data", str(tmp_path), "--out", str(tmp_path)]
    assert main([*argv, "--set", "ae_train.steps=-5"]) == 1
    assert "ae_train.steps = -5: must be >= 1" in capsys.readouterr().err
