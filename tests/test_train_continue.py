"""Long trainings in pieces: extending a finished run with more steps (``--resume``) and going on
in a new folder from a small continuation state (``--continuation`` / ``--resume-from``)."""

import copy
import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.optim.swa_utils import AveragedModel

from millivid.cli import build_parser, main
from millivid.train import CheckpointError, load_checkpoint, read_continuation, train
from millivid.train.continuation import (
    MAX_FILE_BYTES,
    continuation_step,
    load_continuation_into,
    write_continuation,
)
from millivid.train.optim import build_optimizers, ema_update
from millivid.train.resume import resume_run
from tests.test_train import CFG, ToyTask
from tests.test_video_task import synthetic_latents

TINY = [
    "--method", "millivid", "--preset", "tiny", "--device", "cpu",
    "--set", "video_train.batch_size=4", "--set", "video_train.log_every=1",
    "--set", "video_train.ema_decay=0.9",
]  # fmt: skip
MiB = 2**20


def video_train(tmp, out, steps, *extra):
    """``millivid video train`` on the tiny preset, with in-memory latents for the cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("millivid.cli.video.LatentCache", lambda path: synthetic_latents())
        args = ["video", "train", *TINY, "--latents", str(tmp), "--out", str(out)]
        assert main([*args, "--set", f"video_train.steps={steps}", *extra]) == 0


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 10-step tiny run, and a finished 6-step one with its continuation (and
    again with a continuation that keeps only the model)."""
    tmp = tmp_path_factory.mktemp("runs")
    video_train(tmp, tmp / "full", 10)
    video_train(tmp, tmp / "six", 6, "--continuation", str(tmp / "state"))
    model_only = ("--continuation", str(tmp / "state_model"), "--continuation-keep", "model")
    video_train(tmp, tmp / "six_model", 6, *model_only)
    return tmp


def test_a_finished_run_extended_with_more_steps_equals_an_uninterrupted_one(runs, tmp_path):
    run = tmp_path / "six"
    shutil.copytree(runs / "six", run)
    video_train(runs, run, 10, "--resume")
    assert [r["step"] for r in records(run)] == list(range(1, 11))
    assert records(run) == [
        {**r, **{k: s[k] for k in ("steps_per_s", "tokens_per_s", "data_wait")}}  # timings
        for r, s in zip(records(runs / "full"), records(run))
    ]
    for ema in (False, True):
        a, _ = load_checkpoint(runs / "full", ema=ema)
        b, config = load_checkpoint(run, ema=ema)
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert config["video_train"]["steps"] == 10


def test_extending_refuses_any_other_change_and_names_the_key(runs, tmp_path, capsys):
    run = tmp_path / "six"
    shutil.copytree(runs / "six", run)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("millivid.cli.video.LatentCache", lambda path: synthetic_latents())
        args = ["video", "train", *TINY, "--latents", str(runs), "--out", str(run), "--resume"]
        assert main([*args, "--set", "video_train.steps=10", "--set", "model.depth=3"]) == 1
    assert "config differs from this run's (keys: model.depth)" in capsys.readouterr().err


def test_a_new_folder_continues_from_the_continuation_state(runs, tmp_path):
    """Step counter, lr schedule and loss curve go on; the losses stay close to the
    uninterrupted run's (weights and optimizer state were rounded to bf16 once)."""
    new, state = tmp_path / "new", tmp_path / "state"
    video_train(runs, new, 10, "--resume-from", str(runs / "state"), "--continuation", str(state))
    full, cont = records(runs / "full"), records(new)
    assert [r["step"] for r in cont] == list(range(1, 11))
    assert cont[:6] == records(runs / "six")  # the log tail came with the state
    assert [r["lr"] for r in cont] == [r["lr"] for r in full]
    assert [r["loss"] for r in cont[6:]] == pytest.approx([r["loss"] for r in full[6:]], rel=1e-3)
    assert [r["loss"] for r in cont[6:]] != [r["loss"] for r in full[6:]]  # not bitwise
    assert torch.load(new / "checkpoint" / "state.pt", weights_only=True)["step"] == 10
    a, _ = load_checkpoint(runs / "full", ema=True)
    b, _ = load_checkpoint(new, ema=True)
    assert all(torch.allclose(a[k], b[k], rtol=0.02, atol=2e-3) for k in a)
    assert read_continuation(state).step == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "state"]  # no .tmp / .old
    state.rename(tmp_path / "state.old")  # a crash between the swap's two renames
    assert read_continuation(state).step == continuation_step(state) == 10


def test_state_files_are_bf16_and_name_what_they_hold(runs):
    state = runs / "state"
    meta = json.loads((state / "state.json").read_text())
    assert meta["step"] == 6 and [o["type"] for o in meta["optimizers"]] == ["Muon", "AdamW"]
    tensors = {}
    for name in meta["files"]:
        tensors |= load_file(str(state / name))
    kinds = {k.split(".")[0] for k in tensors}
    assert kinds == {"model", "ema", "opt0", "opt1"}
    assert {k.split(".")[-1] for k in tensors if k.startswith("opt")} == {
        "momentum_buffer",
        "exp_avg",
        "exp_avg_sq",
        "step",
    }
    assert all(t.dtype == torch.bfloat16 for k, t in tensors.items() if not k.endswith(".step"))
    assert json.loads((state / "config.json").read_text())["video_train"]["steps"] == 6


def test_a_model_state_holds_the_weights_alone(runs):
    """``--continuation-keep model``: the same bf16 weights as the full state of the same run,
    nothing else (state.json says so), in under 40 % of its size."""
    full, small = read_continuation(runs / "state"), read_continuation(runs / "state_model")
    assert json.loads((runs / "state_model" / "state.json").read_text())["keep"] == "model"
    assert (full.keep, small.keep, small.step) == ("all", "model", 6)
    assert set(small.tensors) == {k for k in full.tensors if k.startswith("model.")}
    assert all(torch.equal(small.tensors[k], full.tensors[k]) for k in small.tensors)
    size = lambda folder: sum(p.stat().st_size for p in folder.iterdir())  # noqa: E731
    assert size(runs / "state_model") < 0.4 * size(runs / "state")


def test_a_new_folder_continues_from_a_model_state(runs, tmp_path, capsys):
    """Step counter, lr schedule and log go on; the first step after it computes the loss of the
    same (bf16) weights; the optimizers start afresh (AdamW counts the steps since)."""
    new = tmp_path / "new"
    capsys.readouterr()
    video_train(runs, new, 10, "--resume-from", str(runs / "state_model"))
    assert "the state kept the weights only" in capsys.readouterr().err
    full, cont = records(runs / "full"), records(new)
    assert [r["step"] for r in cont] == list(range(1, 11))
    assert cont[:6] == records(runs / "six_model")
    assert [r["lr"] for r in cont] == [r["lr"] for r in full]
    assert cont[6]["loss"] == pytest.approx(full[6]["loss"], rel=1e-3)
    state = torch.load(new / "checkpoint" / "state.pt", weights_only=True)
    assert state["step"] == 10
    assert {float(s["step"]) for s in state["optimizers"][1]["state"].values()} == {4.0}


@pytest.mark.parametrize("keep", ["all", "model"])
def test_what_a_resumed_run_starts_with(keep, tmp_path):
    """Right after loading a state: the weights are its weights. Keeping all, the EMA is its EMA
    with one update per step behind it and the optimizers hold their moments; keeping the model,
    the EMA equals the weights with 0 updates behind it (``ema_decay_at``'s warmup again) and
    the optimizers hold nothing."""
    cfg, state = replace(CFG, steps=3, ema_decay=0.99), tmp_path / "state"
    kwargs = {"config": {}, "device": "cpu", "show_progress": False}
    train(ToyTask(), cfg, tmp_path / "a", continuation=state, continuation_keep=keep, **kwargs)
    model = ToyTask().build_model()
    optimizers = build_optimizers(model, cfg)
    ema = AveragedModel(model, multi_avg_fn=ema_update(cfg.ema_decay), use_buffers=True)
    assert resume_run(tmp_path / "b", state, model, ema, optimizers, {}, rank=0) == 3
    saved = read_continuation(state)
    want_ema = saved.weights("ema" if keep == "all" else "model")
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved.weights("model")[key].float())
        assert torch.equal(ema.module.state_dict()[key], want_ema[key].float())
    assert torch.equal(ema.module.inp.weight, model.inp.weight) == (keep == "model")
    assert int(ema.n_averaged) == (3 if keep == "all" else 0)
    assert [bool(o.state) for o in optimizers] == [keep == "all"] * len(optimizers)


def stepped_toy_model(cfg):
    """A toy model and its optimizers after one step on random gradients (state to save)."""
    model = ToyTask().build_model()
    optimizers = build_optimizers(model, cfg)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    for o in optimizers:
        o.step()
    return model, optimizers


def test_a_state_keeps_what_its_state_json_says(tmp_path):
    """A state is read by its ``keep``, not guessed from the tensors it holds: the same tensors
    without ``keep`` (a state written before it existed: all) lack the EMA and optimizer state,
    an error naming the folder and what is missing."""
    model, optimizers = stepped_toy_model(CFG)
    folder, meta_path = tmp_path / "s", tmp_path / "s" / "state.json"
    write_continuation(
        folder, step=5, config={}, model=model, ema=None, optimizers=optimizers, keep="model"
    )
    fresh = ToyTask().build_model()
    fresh_opts = build_optimizers(fresh, CFG)
    load_continuation_into(read_continuation(folder), fresh, copy.deepcopy(fresh), fresh_opts)
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "keep"}))
    old = read_continuation(folder)
    with pytest.raises(CheckpointError, match=rf"{folder}: .* keeps 'all', .* no EMA \(ema\.\*\)"):
        load_continuation_into(old, fresh, copy.deepcopy(fresh), fresh_opts)
    with pytest.raises(CheckpointError, match=r"no optimizer 0 \(\w+, opt0\.\*\) tensors"):
        load_continuation_into(old, fresh, None, fresh_opts)
    meta_path.write_text(json.dumps({**meta, "keep": "weights"}))
    with pytest.raises(CheckpointError, match=r"state.json: keep 'weights', not one of"):
        read_continuation(folder)


def one_step_state(optimizers):
    """Zeros in place of the state a first step creates (the names a real run saves, see the
    test above), without Muon's Newton-Schulz iterations (seconds per mini model on a CPU)."""
    for o in optimizers:
        for p in o.param_groups[0]["params"]:
            if isinstance(o, torch.optim.AdamW):
                o.state[p] = {
                    "step": torch.tensor(1.0),
                    "exp_avg": torch.zeros_like(p),
                    "exp_avg_sq": torch.zeros_like(p),
                }
            else:
                o.state[p] = {"momentum_buffer": torch.zeros_like(p)}


@pytest.mark.parametrize("method", ["millivid", "framepack"])
def test_mini_model_state_fits_16_mib_files_and_64_mib_in_all(method, tmp_path):
    """The mini preset's model, not trained, with EMA weights and a full optimizer state."""
    import copy

    from millivid.jobs.video_task import build_video_model
    from millivid.presets import load_preset

    config = load_preset("mini")
    model = build_video_model(config, method)
    optimizers = build_optimizers(model, config.video_train)
    one_step_state(optimizers)
    ema = copy.deepcopy(model)
    write_continuation(
        tmp_path / "s", step=1, config={}, model=model, ema=ema, optimizers=optimizers
    )
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "s").iterdir()}
    total = sum(sizes.values())  # millivid (7.38 M params): 42.3 MiB, framepack (8.07 M): 46.3
    assert max(sizes.values()) <= MAX_FILE_BYTES == 16 * MiB, sizes
    assert 40 * MiB < total <= 64 * MiB, sizes
    write_continuation(
        tmp_path / "m", step=1, config={}, model=model, ema=ema, optimizers=optimizers, keep="model"
    )
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "m").iterdir()}
    assert "tensors-00001.safetensors" not in sizes  # the weights alone: one file, 14-16 MiB
    assert 14 * MiB < sum(sizes.values()) < 16 * MiB < 0.4 * total, sizes


def test_the_checkout_leaves_room_for_a_model_state_in_a_64_mib_copy():
    """The tracked files (code, docs, shipped checkpoints) and one ``model`` state of a mini
    video model (at most 16 MiB, test above) fit one 64 MiB copy: what a piece of a long
    training on a fresh machine is given."""
    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True)
    paths = [root / name for name in listed.stdout.decode().split("\0") if name]
    size = sum(p.stat().st_size for p in paths if p.is_file())
    assert size + 16 * MiB <= 64 * MiB, f"tracked files: {size / MiB:.1f} MiB"


def test_loaded_state_is_the_bf16_rounding_of_the_saved_one(tmp_path):
    cfg = replace(CFG, steps=5)
    train(ToyTask(), cfg, tmp_path / "run", config={}, device="cpu", show_progress=False)
    model, optimizers = stepped_toy_model(cfg)
    write_continuation(
        tmp_path / "s", step=5, config={}, model=model, ema=None, optimizers=optimizers
    )
    fresh = ToyTask().build_model()
    fresh_opts = build_optimizers(fresh, cfg)
    load_continuation_into(read_continuation(tmp_path / "s"), fresh, None, fresh_opts)
    bf16 = lambda t: t.to(torch.bfloat16).float()  # noqa: E731
    assert all(torch.equal(bf16(a), b) for a, b in zip(model.parameters(), fresh.parameters()))
    for a, b in zip(optimizers, fresh_opts):
        for p, q in zip(a.param_groups[0]["params"], b.param_groups[0]["params"]):
            for name, value in a.state[p].items():
                want = value if name == "step" else bf16(value)
                assert torch.equal(want, b.state[q][name]), name


def test_a_write_that_dies_leaves_the_previous_state(tmp_path, monkeypatch):
    model = ToyTask().build_model()
    optimizers = build_optimizers(model, CFG)
    write_continuation(
        tmp_path / "s", step=3, config={}, model=model, ema=None, optimizers=optimizers
    )

    def dying(tensors, path, *args, **kwargs):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr("millivid.train.continuation.save_file", dying)
    with pytest.raises(OSError, match="disk full"):
        write_continuation(tmp_path / "s", step=4, config={}, model=model, ema=None, optimizers=[])
    assert read_continuation(tmp_path / "s").step == 3


def test_resume_from_takes_whichever_is_further_along(tmp_path, capsys):
    """On a machine that kept its run folder the same command goes on: from the (exact)
    checkpoint when it is as far along as the state, else from the state."""
    kwargs = {"config": {"toy": 1}, "device": "cpu", "show_progress": False}
    state, run, behind = tmp_path / "state", tmp_path / "run", tmp_path / "behind"
    train(ToyTask(), replace(CFG, steps=3), run, continuation=state, **kwargs)
    shutil.copytree(run, behind)
    train(ToyTask(), replace(CFG, steps=5), run, resume=True, continuation=state, **kwargs)
    capsys.readouterr()
    train(ToyTask(), replace(CFG, steps=5), run, resume_from=state, **kwargs)
    assert f"resumed {run} at step 5" in capsys.readouterr().err
    train(ToyTask(), replace(CFG, steps=5), behind, resume_from=state, **kwargs)
    assert f"resumed {state} at step 5" in capsys.readouterr().err
    assert (behind / "metrics.jsonl").read_text() == (run / "metrics.jsonl").read_text()
    assert torch.load(behind / "checkpoint" / "state.pt", weights_only=True)["step"] == 5


def test_resume_from_refuses_a_changed_config_and_resume_with_it(tmp_path):
    kwargs = {"device": "cpu", "show_progress": False}
    cfg, state = replace(CFG, steps=3), tmp_path / "state"
    train(ToyTask(), cfg, tmp_path / "a", config={"toy": 1}, continuation=state, **kwargs)
    with pytest.raises(CheckpointError, match=r"keys: toy\)"):
        train(ToyTask(), cfg, tmp_path / "b", config={"toy": 2}, resume_from=state, **kwargs)
    with pytest.raises(ValueError, match="pass one of them"):
        train(ToyTask(), cfg, tmp_path / "a", config={}, resume=True, resume_from=state, **kwargs)


def test_resume_of_a_finished_run_with_continuation_only_writes_the_state(tmp_path):
    kwargs = {"config": {}, "device": "cpu", "show_progress": False}
    cfg = replace(CFG, steps=3)
    train(ToyTask(), cfg, tmp_path / "run", **kwargs)
    before = (tmp_path / "run" / "checkpoint" / "state.pt").stat().st_mtime_ns
    train(ToyTask(), cfg, tmp_path / "run", resume=True, continuation=tmp_path / "s", **kwargs)
    assert (tmp_path / "run" / "checkpoint" / "state.pt").stat().st_mtime_ns == before
    assert read_continuation(tmp_path / "s").step == 3


def test_train_commands_take_the_continuation_flags():
    parser = build_parser()
    for cmd in ("video train --method millivid --latents L", "ae train --data D"):
        args = parser.parse_args(f"{cmd} --out R --resume-from S --continuation C".split())
        assert (str(args.resume_from), str(args.continuation), args.resume) == ("S", "C", False)
        assert args.continuation_keep == "all"
        args = parser.parse_args(
            f"{cmd} --out R --continuation C --continuation-keep model".split()
        )
        assert args.continuation_keep == "model"
