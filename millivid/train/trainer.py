"""The one trainer of millivid: autoencoder, video model and label probe (paper A.2).

A ``TrainTask`` says what to train (model, batches, loss); ``train`` does the rest: Muon for the
2-D weight matrices of linear layers and AdamW for everything else, linear warmup, grad-norm
clipping, bf16 autocast on CUDA, optional torch.compile (model and Muon step), EMA weights, DDP
under torchrun, atomic checkpoints every N steps and at exit, exact resume, a tqdm bar and
``metrics.jsonl``.

Exact resume: the batch of step ``s`` on rank ``r`` comes from a generator seeded with
``(seed, r, s)`` (``millivid.seeds.train_step_seed``) and the global RNG is reseeded the same
way, so a resumed run sees exactly the batches and noise of an uninterrupted one. The lr
schedule is a function of the step too, so a resumed run may ask for more steps
(``config.RESUMABLE_KEYS``). A run can also go on in a new folder from a small continuation
state (``continuation.py``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from millivid.device import resolve_device
from millivid.seeds import train_step_seed
from millivid.train.checkpoint import (
    write_checkpoint,
)
from millivid.train.config import TrainConfig
from millivid.train.continuation import (
    write_continuation,
)
from millivid.train.optim import build_optimizers, ema_update, lr_schedulers, optimizer_step
from millivid.train.resume import checkpoint_step, resume_run, truncate_log
from millivid.train.run_start import check_run_start
from millivid.train.signals import StepBoundaryStop


class TrainTask(Protocol):
    """What to train. Everything random in ``batch`` must come from ``generator``."""

    items_per_batch: int  # e.g. frames or tokens per batch, for the progress rate
    items_name: str

    def build_model(self) -> nn.Module: ...

    def batch(self, step: int, generator: torch.Generator) -> Any: ...

    def loss(
        self, model: nn.Module, batch: Any, device: torch.device
    ) -> tuple[Tensor, dict[str, Tensor | float]]:
        """(loss, metrics to log). Metrics may stay device tensors: the trainer reads them only
        at logging steps, so a task never forces a GPU sync per step."""
        ...


class StepBatches(torch.utils.data.Dataset):
    """Batch ``step`` of a task as a dataset item: a function of (seed, rank, step) only, so
    DataLoader workers can build batches ahead of the training loop without changing them."""

    def __init__(self, task: TrainTask, seed: int, rank: int, steps: int) -> None:
        self.task, self.seed, self.rank, self.steps = task, seed, rank, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        seed = train_step_seed(self.seed, self.rank, step)
        torch.manual_seed(seed)  # a task may use the global RNG: same in a worker as in-process
        return self.task.batch(step, torch.Generator().manual_seed(seed))


def step_batches(task: TrainTask, cfg: TrainConfig, rank: int, start: int, pin: bool = False):
    """Iterator over the batches of steps ``start..cfg.steps``; ``cfg.num_workers`` processes
    build them ahead (4 each), 0 builds them in this process; ``pin``: page-locked batches (for
    asynchronous copies to a GPU; a batch type other than tensors and tuples needs a
    ``pin_memory()`` method)."""
    loader = torch.utils.data.DataLoader(
        StepBatches(task, cfg.seed, rank, cfg.steps),
        batch_size=None,
        sampler=range(start, cfg.steps),
        num_workers=cfg.num_workers,
        prefetch_factor=4 if cfg.num_workers else None,
        persistent_workers=False,
        pin_memory=pin,
    )
    return iter(loader)


def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _unwrap(model: nn.Module) -> nn.Module:
    model = model.module if isinstance(model, DistributedDataParallel) else model
    return getattr(model, "_orig_mod", model)


def _rng_state(device: torch.device) -> dict[str, Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


@dataclass
class _Run:
    """What one ``train`` call trains with: the model and its optimisation, where it runs and
    where it writes; shared by the module-level pieces of ``train``."""

    task: TrainTask
    cfg: TrainConfig
    out_dir: Path
    config: dict[str, Any]
    continuation: Path | None
    continuation_keep: str  # what the continuation state keeps (continuation.KEEP)
    rank: int
    world: int
    dev: torch.device
    model: nn.Module
    ema: AveragedModel | None
    optimizers: list
    start: int
    schedulers: list
    train_model: nn.Module  # the model wrapped for DDP and compiled, as configured
    step_optimizers: Callable[[], None]
    autocast: AbstractContextManager

    @property
    def log_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"


def train(
    task: TrainTask,
    cfg: TrainConfig,
    out_dir: Path,
    *,
    config: dict[str, Any],
    resume: bool = False,
    resume_from: Path | None = None,
    continuation: Path | None = None,
    continuation_keep: str = "all",
    device: str = "auto",
    show_progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Train ``task`` for ``cfg.steps`` steps into ``out_dir``; returns the checkpoint folder.

    ``config`` (JSON-able) is saved beside the weights. ``resume=True`` continues from the
    latest checkpoint in ``out_dir``; ``resume_from`` from a continuation state (or from
    ``out_dir``'s checkpoint when that is as far along). Either way the saved config must
    equal ``config`` but for ``RESUMABLE_KEYS`` of a training section (e.g. more steps).
    Without either, an ``out_dir`` that already holds a run is refused unless ``overwrite``
    (which replaces its checkpoint and metrics.jsonl). ``continuation``: also write the
    continuation state into this folder with every checkpoint and at exit; it keeps
    ``continuation_keep``: ``"all"``, or ``"model"`` (the weights alone, ``continuation.py``).
    """
    out_dir = Path(out_dir)
    # on every rank; none writes before the DDP wrap below, which waits for all of them
    check_run_start(
        out_dir, cfg, config, resume=resume, resume_from=resume_from, overwrite=overwrite
    )
    owns_group = not dist.is_initialized()  # torchrun: this call starts the process group
    run = _start_run(
        task, cfg, out_dir, config, continuation, continuation_keep, device, resume, resume_from
    )
    if run.rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        truncate_log(run.log_path, run.start)
    bar = tqdm(
        total=cfg.steps,
        initial=run.start,
        disable=not show_progress or run.rank != 0,
        dynamic_ncols=True,
        desc="train",
        unit="step",
    )
    _train_steps(run, bar)
    if run.world > 1 and owns_group:
        dist.destroy_process_group()  # no collective follows (rank 0 alone saves)
    return out_dir / "checkpoint"


def _start_run(
    task: TrainTask,
    cfg: TrainConfig,
    out_dir: Path,
    config: dict[str, Any],
    continuation: Path | None,
    continuation_keep: str,
    device: str,
    resume: bool,
    resume_from: Path | None,
) -> _Run:
    """The model, EMA, optimizers and schedulers of a run, fresh or resumed, on its device
    (DDP under torchrun, compiled when ``cfg.compile``)."""
    rank, world = _distributed()
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    torch.manual_seed(cfg.seed)
    model = task.build_model().to(dev)
    optimizers = build_optimizers(model, cfg)
    ema = (
        AveragedModel(model, multi_avg_fn=ema_update(cfg.ema_decay), use_buffers=True)
        if cfg.ema_decay > 0
        else None
    )
    start = 0
    if resume or resume_from is not None:  # also sets the EMA's update count
        start = resume_run(out_dir, resume_from, model, ema, optimizers, config, rank)
    return _Run(
        task=task,
        cfg=cfg,
        out_dir=out_dir,
        config=config,
        continuation=continuation,
        continuation_keep=continuation_keep,
        rank=rank,
        world=world,
        dev=dev,
        model=model,
        ema=ema,
        optimizers=optimizers,
        start=start,
        schedulers=lr_schedulers(optimizers, cfg, start),
        train_model=_wrap(model, cfg, dev, world),
        step_optimizers=optimizer_step(optimizers, cfg.compile),
        autocast=(
            torch.autocast("cuda", dtype=torch.bfloat16)
            if dev.type == "cuda" and cfg.bf16
            else nullcontext()
        ),
    )


def _wrap(model: nn.Module, cfg: TrainConfig, dev: torch.device, world: int) -> nn.Module:
    """The model as the training step calls it: DDP over several processes, compiled when
    ``cfg.compile``."""
    if world > 1:
        model = DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    if cfg.compile:
        model = torch.compile(model)
    return model


def _train_steps(run: _Run, bar: tqdm) -> None:
    """Steps ``run.start..cfg.steps``: log every ``log_every``, checkpoint every
    ``checkpoint_every`` and at exit, also on Ctrl-C, SIGTERM or an error (not after a
    non-finite loss: the last checkpoint keeps the last finite state)."""
    cfg, start = run.cfg, run.start
    step, diverged = start, False
    last_time, last_step, waited = time.perf_counter(), start, 0.0
    batches = step_batches(run.task, cfg, run.rank, start, pin=run.dev.type == "cuda")
    # after the loader, which sets its own SIGCHLD handler; saving below is not interrupted
    with StepBoundaryStop() as stop:
        try:
            run.model.train()
            while step < cfg.steps:
                if run.world == 1 or step % cfg.log_every == 0:  # several ranks: agreed steps
                    stop.check(run.world, run.dev)  # `timeout`, schedulers, Ctrl-C: save, stop
                try:
                    asked = time.perf_counter()
                    batch = next(batches)
                    waited += time.perf_counter() - asked
                except Exception:  # workers gone (killed with us: RuntimeError, OSError from
                    stop.check()  # a half-received batch), or a real error
                    raise
                loss, metrics, grad_norm = _optimise(run, step, batch)
                step += 1
                bar.update(1)
                logging = step % cfg.log_every == 0 or step == cfg.steps
                saving = step % cfg.checkpoint_every == 0 and step < cfg.steps
                if logging or saving:  # the loss is read (a GPU sync) only here, not every step
                    if not math.isfinite(value := loss.item()):
                        diverged = True
                        raise FloatingPointError(
                            f"step {step}: loss is {value}; lower train.lr or check data "
                            f"(not saved: {run.out_dir / 'checkpoint'} keeps the last finite "
                            "state)"
                        )
                if logging:
                    now = time.perf_counter()
                    span = max(now - last_time, 1e-9)
                    rate, data_wait = (step - last_step) / span, min(waited / span, 1.0)
                    last_time, last_step, waited = now, step, 0.0
                    _log_step(run, bar, step, value, grad_norm, metrics, rate, data_wait)
                if saving:
                    _save(run, step)
        finally:
            bar.close()
            # nothing trained before a first step fails (a corrupt batch): no step-0 checkpoint
            if not diverged and step > 0 and (step > start or checkpoint_step(run.out_dir) != step):
                _save(run, step)  # at exit, also on Ctrl-C or an error: nothing trained is lost
            elif not diverged and run.continuation is not None:
                _save(run, step, checkpoint=False)  # nothing trained: the checkpoint's state


def _optimise(run: _Run, step: int, batch: Any) -> tuple[Tensor, dict, Tensor]:
    """One optimisation step on ``batch``: (loss, the task's metrics, the gradient norm before
    clipping)."""
    torch.manual_seed(train_step_seed(run.cfg.seed, run.rank, step))  # model-side randomness
    with run.autocast:
        loss, metrics = run.task.loss(run.train_model, batch, run.dev)
    for o in run.optimizers:
        o.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.grad_clip)
    run.step_optimizers()
    for s in run.schedulers:
        s.step()
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    return loss, metrics, grad_norm


def _log_step(
    run: _Run,
    bar: tqdm,
    step: int,
    loss: float,
    grad_norm: Tensor,
    metrics: dict,
    rate: float,
    data_wait: float,
) -> None:
    """One line of ``metrics.jsonl`` (rank 0) and the progress bar's loss and rate;
    ``data_wait``: the fraction of the time since the last line spent waiting for batches (near
    0: the GPU is the limit; near 1: the data loader is)."""
    items = run.task.items_name
    record = {
        "step": step,
        "loss": loss,
        "grad_norm": float(grad_norm),
        "lr": float(run.schedulers[0].get_last_lr()[0]),
        "steps_per_s": rate,
        "data_wait": data_wait,
        f"{items}_per_s": rate * run.task.items_per_batch * run.world,
        "processes": run.world,  # DDP processes (GPUs) training together
        **{k: float(v) for k, v in metrics.items()},
    }
    bar.set_postfix(
        loss=f"{record['loss']:.4f}", **{items + "/s": f"{record[f'{items}_per_s']:.0f}"}
    )
    if run.rank == 0:
        with run.log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def _save(run: _Run, step: int, checkpoint: bool = True) -> None:
    """Rank 0: the checkpoint of ``step`` (unless ``checkpoint`` is False) and the
    continuation state when the run writes one."""
    if run.rank != 0:
        return
    ema_model = _unwrap(run.ema.module) if run.ema is not None else None
    if checkpoint:
        state = {
            "step": step,
            "optimizers": [o.state_dict() for o in run.optimizers],
            "rng": _rng_state(run.dev),
        }
        ema_weights = ema_model.state_dict() if ema_model is not None else None
        write_checkpoint(run.out_dir, run.model.state_dict(), run.config, state, ema_weights)
    if run.continuation is not None:
        write_continuation(
            run.continuation,
            step=step,
            config=run.config,
            model=run.model,
            ema=ema_model,
            optimizers=run.optimizers,
            log=run.log_path,
            keep=run.continuation_keep,
        )


def bf16_megabytes(model: nn.Module) -> float:
    """Size of the weights saved as bf16 safetensors, in MB (10^6 bytes)."""
    return sum(t.numel() for t in model.state_dict().values()) * 2 / 1e6
