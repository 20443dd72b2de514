import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
from torch import nn

from millivid.train import (
    CheckpointError,
    TrainConfig,
    ema_decay_at,
    load_checkpoint,
    lr_factor,
    split_parameters,
    train,
    write_checkpoint,
)

CFG = TrainConfig(steps=40, batch_size=8, lr=2e-2, warmup_steps=5, checkpoint_every=10, log_every=1)


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(4, 16)
        self.norm = nn.LayerNorm(16)
        self.out = nn.Linear(16, 1)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.out(torch.relu(self.norm(self.inp(x)))) * self.scale


class ToyTask:
    items_name = "samples"
    items_per_batch = 8

    def build_model(self):
        return ToyModel()

    def batch(self, step, generator):
        x = torch.randn(8, 4, generator=generator)
        return x, x @ torch.tensor([[0.5], [-1.0], [0.25], [1.0]])

    def loss(self, model, batch, device):
        x, y = (t.to(device) for t in batch)
        noise = torch.randn_like(y) * 0.01  # global RNG: reseeded per step by the trainer
        return ((model(x) - y - noise) ** 2).mean(), {}


def losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_every_parameter_in_exactly_one_group():
    model = ToyModel()
    muon, adamw = split_parameters(model)
    ids = [id(p) for p in muon + adamw]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert len(set(ids)) == len(ids)
    assert {id(p) for p in muon} == {id(model.inp.weight), id(model.out.weight)}
    assert all(p.dim() == 2 for p in muon)


def test_loss_goes_down_and_checkpoint_loads(tmp_path):
    train(ToyTask(), CFG, tmp_path, config={"toy": 1}, device="cpu", show_progress=False)
    curve = losses(tmp_path)
    assert len(curve) == CFG.steps
    assert sum(curve[-5:]) < 0.5 * sum(curve[:5])
    weights, config = load_checkpoint(tmp_path)
    assert config == {"toy": 1}
    assert set(weights) == set(ToyModel().state_dict())


def test_resume_gives_the_same_loss_sequence(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    train(ToyTask(), CFG, full, config={"toy": 1}, device="cpu", show_progress=False)
    train(
        ToyTask(),
        replace(CFG, steps=20),
        part,
        config={"toy": 1},
        device="cpu",
        show_progress=False,
    )
    train(ToyTask(), CFG, part, config={"toy": 1}, resume=True, device="cpu", show_progress=False)
    assert losses(part) == losses(full)
    a, _ = load_checkpoint(full)
    b, _ = load_checkpoint(part)
    assert all(torch.equal(a[k], b[k]) for k in a)


class GlobalRNGTask(ToyTask):
    def batch(self, step, generator):
        x, y = super().batch(step, generator)
        return x + torch.randn(8, 4), y  # the global RNG too: must match in worker processes


def test_worker_processes_build_the_same_batches(tmp_path):
    runs = []
    for workers in (0, 2):
        run = tmp_path / f"w{workers}"
        cfg = replace(CFG, steps=12, num_workers=workers)
        train(GlobalRNGTask(), cfg, run, config={"toy": 1}, device="cpu", show_progress=False)
        runs.append(losses(run))
    assert len(runs[0]) == 12
    assert runs[0] == runs[1]


def test_resume_with_another_config_is_refused(tmp_path):
    train(
        ToyTask(),
        replace(CFG, steps=5),
        tmp_path,
        config={"toy": 1},
        device="cpu",
        show_progress=False,
    )
    with pytest.raises(CheckpointError, match="config.json.*toy"):
        train(
            ToyTask(),
            CFG,
            tmp_path,
            config={"toy": 2},
            resume=True,
            device="cpu",
            show_progress=False,
        )


def test_ema_weights_are_saved(tmp_path):
    train(
        ToyTask(),
        replace(CFG, steps=5, ema_decay=0.9),
        tmp_path,
        config={},
        device="cpu",
        show_progress=False,
    )
    model, _ = load_checkpoint(tmp_path)
    ema, _ = load_checkpoint(tmp_path, ema=True)
    assert set(model) == set(ema)
    assert any(not torch.equal(model[k], ema[k]) for k in model)


def test_crash_mid_write_leaves_previous_checkpoint_loadable(tmp_path):
    write_checkpoint(tmp_path, {"w": torch.ones(2)}, {"v": 1})
    # a writer killed while the new checkpoint is half written (os._exit: no cleanup at all)
    code = (
        "import torch, safetensors.torch as st, pathlib, os\n"
        "from millivid.train import checkpoint as c\n"
        "orig = st.save_file\n"
        "def dying(tensors, path, *a, **k):\n"
        "    pathlib.Path(path).write_bytes(b'half')\n"
        "    os._exit(1)\n"
        "c.save_file = dying\n"
        f"c.write_checkpoint(pathlib.Path({str(tmp_path)!r}), {{'w': torch.zeros(2)}}, {{'v': 2}})\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 1
    weights, config = load_checkpoint(tmp_path)
    assert config == {"v": 1} and torch.equal(weights["w"], torch.ones(2))
    # the killed writer's folder has a name of its own; the next write removes it
    (leftover,) = tmp_path.glob("checkpoint.tmp-*")
    write_checkpoint(tmp_path, {"w": torch.zeros(2)}, {"v": 3})
    assert not leftover.exists() and [p.name for p in tmp_path.iterdir()] == ["checkpoint"]
    assert load_checkpoint(tmp_path)[1] == {"v": 3}


def test_swap_interrupted_between_renames_falls_back_to_old(tmp_path):
    write_checkpoint(tmp_path, {"w": torch.ones(2)}, {"v": 1})
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.old")
    weights, config = load_checkpoint(tmp_path)
    assert config == {"v": 1}


def test_missing_checkpoint_names_the_folder(tmp_path):
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        load_checkpoint(tmp_path)


def test_ema_decay_warms_up_then_holds():
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(90, 0.999) == pytest.approx(91 / 100)
    assert ema_decay_at(10**6, 0.999) == 0.999
    decays = [ema_decay_at(n, 0.99) for n in range(2000)]
    assert decays == sorted(decays)


def test_ema_of_a_short_run_forgets_the_initial_weights(tmp_path):
    # 0.9999 without warmup would keep ~100 % of the first weights after 30 steps
    cfg = replace(CFG, steps=30, ema_decay=0.9999, warmup_steps=1, checkpoint_every=30)
    torch.manual_seed(cfg.seed)
    init = ToyTask().build_model().state_dict()
    train(ToyTask(), cfg, tmp_path, config={}, device="cpu", show_progress=False)
    model, _ = load_checkpoint(tmp_path)
    ema, _ = load_checkpoint(tmp_path, ema=True)
    for k in model:
        moved = (model[k] - init[k]).norm()
        if moved > 0:
            assert (ema[k] - model[k]).norm() < 0.5 * moved, k


def test_sigterm_to_the_process_group_saves_the_step_reached(tmp_path):
    # as `timeout` does: the trainer and its DataLoader workers all get SIGTERM
    code = (
        "import faulthandler, signal, sys, time, torch\n"
        "faulthandler.register(signal.SIGUSR1, all_threads=True)\n"  # a stack if it hangs
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_train import ToyTask, CFG\n"
        "from dataclasses import replace\n"
        "from millivid.train import train\n"
        "class Slow(ToyTask):\n"
        "    def batch(self, step, generator):\n"
        "        time.sleep(0.02)\n"
        "        return super().batch(step, generator)\n"
        "cfg = replace(CFG, steps=100_000, checkpoint_every=10**9, num_workers=2)\n"
        "train(Slow(), cfg, sys.argv[1], config={}, device='cpu', show_progress=False)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), os.path.dirname(__file__)],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    log = tmp_path / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while (not log.exists() or len(log.read_text().splitlines()) < 20) and proc.poll() is None:
        assert time.monotonic() < deadline, "the trainer logged nothing in 60 s"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    os.killpg(proc.pid, signal.SIGTERM)  # GNU timeout signals the job, then its process group
    try:  # generous: a loaded 2-core machine is slow to reap the workers and save
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(5)
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"no exit 180 s after SIGTERM; its stack:\n{err[-6000:]}")
    assert "stopped between steps on signal 15" in err, err[-3000:]
    assert (tmp_path / "checkpoint" / "state.pt").exists(), err
    state = torch.load(tmp_path / "checkpoint" / "state.pt", weights_only=True)
    assert int(state["step"]) >= 20
    assert int(state["step"]) == len(log.read_text().splitlines())


class DivergingTask(ToyTask):
    def loss(self, model, batch, device):
        loss, metrics = super().loss(model, batch, device)
        if torch.is_grad_enabled() and model.training and getattr(self, "calls", 0) >= 14:
            loss = loss * float("nan")
        self.calls = getattr(self, "calls", 0) + 1
        return loss, metrics


def test_divergence_stops_without_overwriting_the_last_checkpoint(tmp_path):
    """The loss is read only at log/checkpoint steps (no GPU sync every step); a non-finite one
    raises there and the last finite checkpoint stays as it was."""
    cfg = replace(CFG, log_every=5, checkpoint_every=10)
    with pytest.raises(FloatingPointError, match="step 15"):
        train(DivergingTask(), cfg, tmp_path, config={}, device="cpu", show_progress=False)
    state = torch.load(tmp_path / "checkpoint" / "state.pt", weights_only=True)
    assert int(state["step"]) == 10
    weights, _ = load_checkpoint(tmp_path)
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_step_boundary_stop_escalates_only_on_a_second_ctrl_c():
    from millivid.train.signals import StepBoundaryStop

    stop = StepBoundaryStop()
    stop.check()  # nothing asked yet
    stop._handler(signal.SIGTERM, None)
    stop._handler(signal.SIGTERM, None)  # `timeout` sends two: still a clean stop
    with pytest.raises(KeyboardInterrupt, match="between steps on signal 15"):
        stop.check()
    ctrl_c = StepBoundaryStop()
    ctrl_c._handler(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt, match="second"):
        ctrl_c._handler(signal.SIGINT, None)


def test_lr_factor_warms_up_holds_then_cools_down_to_zero():
    flat = lr_factor(TrainConfig(steps=100, warmup_steps=10))
    assert [flat(s) for s in (0, 9, 50, 99)] == [pytest.approx(0.1), 1.0, 1.0, 1.0]
    wsd = lr_factor(TrainConfig(steps=100, warmup_steps=10, cooldown=0.2))
    factors = [wsd(s) for s in range(100)]
    assert factors[10:80] == [1.0] * 70  # stable until the last 20 steps
    assert factors[80:] == sorted(factors[80:], reverse=True)
    assert factors[99] == pytest.approx(1 / 20) and wsd(100) == 0.0


class TensorMetricTask(ToyTask):
    def loss(self, model, batch, device):
        loss, _ = super().loss(model, batch, device)
        return loss, {"half_loss": loss.detach() / 2}  # a device tensor: read only when logging


def test_tensor_metrics_are_logged_as_numbers(tmp_path):
    cfg = replace(CFG, steps=6, log_every=3)
    train(TensorMetricTask(), cfg, tmp_path, config={}, device="cpu", show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6]
    assert all(r["half_loss"] == pytest.approx(r["loss"] / 2) for r in records)


class SlowDataTask(ToyTask):
    def batch(self, step, generator):
        time.sleep(0.05)  # a data loader far slower than the step
        return super().batch(step, generator)


def test_the_log_says_how_much_of_the_time_went_to_waiting_for_data(tmp_path):
    cfg = replace(CFG, steps=6, log_every=3, num_workers=0)
    train(SlowDataTask(), cfg, tmp_path / "slow", config={}, device="cpu", show_progress=False)
    train(ToyTask(), cfg, tmp_path / "fast", config={}, device="cpu", show_progress=False)

    def waits(run):
        return [json.loads(line)["data_wait"] for line in (run / "metrics.jsonl").open()]

    assert all(0.5 < w <= 1 for w in waits(tmp_path / "slow"))
    assert all(0 <= w < 0.5 for w in waits(tmp_path / "fast"))


def test_shipped_tasks_hand_back_metrics_without_reading_them():
    """No task turns a metric into a Python number in ``loss`` (on a GPU that waits for the
    step to finish, every step): the AE and video tasks return tensors."""
    from millivid.autoencoder.task import AutoencoderTask
    from millivid.presets import PRESETS

    ae = AutoencoderTask(PRESETS["tiny"].ae, torch.zeros(16, 32, 32, 3, dtype=torch.uint8), 4)
    _, metrics = ae.loss(ae.build_model(), ae.batch(0, torch.Generator()), "cpu")
    assert metrics and all(isinstance(v, torch.Tensor) for v in metrics.values())

    from millivid.jobs.video_task import VideoTask
    from tests.test_video_task import synthetic_latents, tiny_config

    video = VideoTask(tiny_config(), "millivid", synthetic_latents())
    _, metrics = video.loss(video.build_model(), video.batch(0, torch.Generator()), "cpu")
    assert metrics and all(isinstance(v, torch.Tensor) for v in metrics.values())


def test_compiled_run_follows_the_eager_one_and_resumes(tmp_path, monkeypatch):
    """``compile``: the model and Muon's step are compiled (aot_eager stands in for inductor,
    whose cold CPU compile takes a minute); the losses follow the eager run's up to rounding,
    the tensor lr is logged as a number and follows the schedule, and a compiled run resumes
    exactly."""
    compiled, real = [], torch.compile

    def aot_eager(fn=None, **kwargs):
        compiled.append(getattr(fn, "__name__", type(fn).__name__))
        return real(fn, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", aot_eager)
    cfg = replace(CFG, steps=20)
    eager, full, part = tmp_path / "eager", tmp_path / "full", tmp_path / "part"
    train(ToyTask(), cfg, eager, config={}, device="cpu", show_progress=False)
    assert compiled == []
    cfg = replace(cfg, compile=True)
    train(ToyTask(), cfg, full, config={}, device="cpu", show_progress=False)
    assert compiled == ["ToyModel", "muon_step"]
    # rounding differences (fp32 lr tensor, bf16 Newton-Schulz) grow to ~0.3 % over 20 steps
    assert losses(full) == pytest.approx(losses(eager), rel=1e-2)
    records = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    lr_next = [CFG.lr * min(1, (s + 1) / 5) for s in range(1, 21)]  # logged after its step
    assert [r["lr"] for r in records] == pytest.approx(lr_next)
    train(ToyTask(), replace(cfg, steps=10), part, config={}, device="cpu", show_progress=False)
    train(ToyTask(), cfg, part, config={}, resume=True, device="cpu", show_progress=False)
    assert losses(part) == losses(full)


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _train_toy(run, cfg, **kwargs):
    from millivid.typed_config import to_dict

    config = {"train": to_dict(cfg)}  # a training section: its steps may change on resume
    train(ToyTask(), cfg, run, config=config, device="cpu", show_progress=False, **kwargs)


def test_resume_with_another_cooldown_follows_the_new_schedule_from_the_resumed_step(tmp_path):
    """Raising ``steps`` and adding a cooldown on resume: the steps after it use the new
    schedule's lr from the first resumed step on, exactly as a run configured so from the start
    (whose cooldown begins only at the resumed step, so the first 6 steps are the same)."""
    full, part = tmp_path / "full", tmp_path / "part"
    ten = replace(CFG, steps=10, cooldown=0.5)  # lr falls over steps 5..9: 1, 0.8, ..., 0.2
    _train_toy(full, ten)
    _train_toy(part, replace(CFG, steps=6))
    _train_toy(part, ten, resume=True)
    assert losses(part) == losses(full)
    a, _ = load_checkpoint(full)
    b, config = load_checkpoint(part)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert config["train"]["steps"] == 10 and config["train"]["cooldown"] == 0.5


def test_a_cooldown_moves_to_the_end_of_the_new_total(tmp_path):
    """A finished run that cooled down to lr 0 and is extended from 6 to 10 steps: the lr goes
    back up to the new schedule's value at step 6 and cools down again over the new last half."""
    _train_toy(tmp_path, replace(CFG, steps=6, cooldown=0.5))
    _train_toy(tmp_path, replace(CFG, steps=10, cooldown=0.5), resume=True)
    old = lr_factor(replace(CFG, steps=6, cooldown=0.5))
    new = lr_factor(replace(CFG, steps=10, cooldown=0.5))
    lrs = [r["lr"] for r in _records(tmp_path)]  # logged after step s: the lr of the next one
    assert lrs[:6] == pytest.approx([CFG.lr * old(s) for s in range(1, 7)])
    assert lrs[5] == 0.0
    assert lrs[6:] == pytest.approx([CFG.lr * new(s) for s in range(7, 11)])
    assert lrs[6:] == pytest.approx([CFG.lr * f for f in (0.6, 0.4, 0.2, 0.0)])


def test_resume_refuses_unsafe_changes_and_names_them(tmp_path):
    _train_toy(tmp_path, replace(CFG, steps=4))
    with pytest.raises(CheckpointError, match=r"keys: train\.batch_size, train\.lr\)"):
        _train_toy(tmp_path, replace(CFG, steps=8, batch_size=4, lr=1e-3), resume=True)


def test_check_resumable_allows_only_the_listed_keys_of_training_sections():
    from millivid.train import RESUMABLE_KEYS, check_resumable
    from millivid.typed_config import to_dict

    section = to_dict(CFG)
    saved = {"stage": "video", "model": {"depth": 2, "steps": 1}, "video_train": section}
    safe = {k: not v if isinstance(v, bool) else v + 1 for k, v in section.items()}
    safe = {k: safe[k] if k in RESUMABLE_KEYS else v for k, v in section.items()}
    changed = check_resumable(saved, {**saved, "video_train": safe}, "c.json")
    assert changed == sorted(f"video_train.{k}" for k in RESUMABLE_KEYS)
    for unsafe in ({"model": {"depth": 2, "steps": 2}}, {"stage": "autoencoder"}):
        with pytest.raises(CheckpointError, match="c.json: config differs"):
            check_resumable(saved, {**saved, **unsafe}, "c.json")
    with pytest.raises(CheckpointError, match="video_train.warmup_steps"):
        check_resumable(saved, {**saved, "video_train": {**section, "warmup_steps": 1}}, "c.json")


def test_resume_keeps_the_ema_average(tmp_path):
    """The EMA goes on from its saved weights and update count (it was reset to the weights)."""
    full, part = tmp_path / "full", tmp_path / "part"
    cfg = replace(CFG, steps=20, ema_decay=0.9)
    train(ToyTask(), cfg, full, config={}, device="cpu", show_progress=False)
    train(ToyTask(), replace(cfg, steps=10), part, config={}, device="cpu", show_progress=False)
    train(ToyTask(), cfg, part, config={}, resume=True, device="cpu", show_progress=False)
    a, _ = load_checkpoint(full, ema=True)
    b, _ = load_checkpoint(part, ema=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
