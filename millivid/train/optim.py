"""Optimisation pieces of the trainer (paper A.2): Muon for the 2-D weights of linear layers,
AdamW for the rest, the optimizer step (compiled with the model), the learning-rate factor
(linear warmup, optional cooldown) and the EMA update with its warmup."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

from millivid.train.config import TrainConfig


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(Muon params, AdamW params): 2-D weights of ``nn.Linear`` layers vs everything else.

    Every trainable parameter lands in exactly one list (shared parameters once).
    """
    muon_ids = {
        id(m.weight) for m in model.modules() if isinstance(m, nn.Linear) and m.weight.dim() == 2
    }
    muon, adamw, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (muon if id(p) in muon_ids else adamw).append(p)
    return muon, adamw


def build_optimizers(model: nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """Muon (torch.optim.Muon, RMS-matched to AdamW so one lr fits both) + AdamW."""
    muon_params, adamw_params = split_parameters(model)
    optimizers: list[torch.optim.Optimizer] = []
    if muon_params and hasattr(torch.optim, "Muon"):
        optimizers.append(
            torch.optim.Muon(
                muon_params,
                lr=cfg.lr,
                weight_decay=cfg.weight_decay,
                adjust_lr_fn="match_rms_adamw",
            )
        )
    elif muon_params:
        warnings.warn(
            "torch.optim.Muon is not available (torch < 2.9): using AdamW for all", stacklevel=2
        )
        adamw_params = muon_params + adamw_params
    if adamw_params:
        fused = all(p.is_cuda for p in adamw_params) or None  # one kernel per step on a GPU
        optimizers.append(
            torch.optim.AdamW(
                adamw_params,
                lr=cfg.lr,
                weight_decay=cfg.weight_decay,
                betas=(0.9, 0.95),
                fused=fused,
            )
        )
    return optimizers


def optimizer_step(optimizers: list[torch.optim.Optimizer], compile: bool) -> Callable[[], None]:
    """One call steps every optimizer. ``compile``: Muon's step is compiled (torch.compile, as
    in PyTorch's compiled-optimizer recipe): its per-matrix Newton-Schulz iterations and updates
    become fewer, fused kernels instead of ~23 launches per matrix, which bound the step rate of a
    small model on a GPU. Its lr becomes a tensor, so the scheduler updates it in place
    without a recompile. Fused AdamW is already one kernel and stays eager."""
    muon = [o for o in optimizers if compile and isinstance(o, getattr(torch.optim, "Muon", ()))]
    eager = [o for o in optimizers if o not in muon]
    for o in muon:
        for group in o.param_groups:
            group["lr"] = torch.as_tensor(group["lr"])

    def muon_step() -> None:
        for o in muon:
            o.step()

    compiled = torch.compile(muon_step) if muon else None

    def step() -> None:
        if compiled is not None:
            compiled()
        for o in eager:
            o.step()

    return step


def lr_factor(cfg: TrainConfig) -> Callable[[int], float]:
    """Multiplier of ``lr`` at a step: linear warmup from 0 over ``warmup_steps``, then constant
    (paper A.2); with ``cooldown`` > 0 it falls linearly to 0 over the last ``cooldown`` fraction
    of ``steps`` (warmup-stable-decay)."""
    decay = round(cfg.cooldown * cfg.steps)

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
        if decay <= 0:
            return warm
        return min(warm, max(0.0, (cfg.steps - step) / decay))

    return factor


def ema_decay_at(updates: int, decay: float) -> float:
    """EMA decay for the update after ``updates`` earlier ones: min(decay, (1+n)/(10+n)).

    Without the warmup a short run's EMA keeps decay**n of the random initial weights (16 % after
    1,800 steps at 0.999); with it the early weights are forgotten within a few hundred steps.
    """
    return min(decay, (1 + updates) / (10 + updates))


def ema_update(decay: float) -> Callable:
    """``AveragedModel`` multi_avg_fn: in-place EMA with ``ema_decay_at``'s warmup."""

    def update(averaged: list[Tensor], current: list[Tensor], updates: Tensor) -> None:
        d = ema_decay_at(int(updates), decay)
        torch._foreach_lerp_(averaged, current, 1.0 - d)

    return update


def lr_schedulers(optimizers, cfg: TrainConfig, start: int) -> list:
    """One LambdaLR per optimizer, set to step ``start`` of ``cfg``'s schedule (a function of
    the step only, so a resumed run follows its own config's schedule from there on)."""
    for o in optimizers:
        for group in o.param_groups:
            group["initial_lr"] = cfg.lr
    lr_scheduler = torch.optim.lr_scheduler
    return [lr_scheduler.LambdaLR(o, lr_factor(cfg), last_epoch=start - 1) for o in optimizers]
