"""Optimisation and checkpointing configuration shared by every trainer (paper A.2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from millivid.typed_config import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Muon for 2-D linear weights, AdamW for the rest; warmup, clipping, checkpoints."""

    steps: int = 20_000
    batch_size: int = 64  # per process
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 2_000
    cooldown: float = 0.0  # fraction of the last steps where lr decays linearly to 0 (0: none)
    grad_clip: float = 1.0
    ema_decay: float = 0.0  # 0 disables EMA weights
    seed: int = 0
    checkpoint_every: int = 1_000
    log_every: int = 10
    bf16: bool = True  # bf16 autocast when on CUDA
    compile: bool = False
    num_workers: int = 0  # processes building batches ahead of the loop (0: in the loop)


def check_train_config(cfg: TrainConfig, section: str = "train") -> None:
    """A ``ConfigError`` naming ``section.key`` for the first value no run can train with (a
    negative step count would otherwise "finish" at step 0 and save untrained weights)."""
    rules = (
        ("steps", cfg.steps >= 1, ">= 1"),
        ("batch_size", cfg.batch_size >= 1, ">= 1"),
        ("lr", math.isfinite(cfg.lr) and cfg.lr > 0, "a finite number > 0"),
        ("weight_decay", math.isfinite(cfg.weight_decay) and cfg.weight_decay >= 0, ">= 0"),
        ("warmup_steps", cfg.warmup_steps >= 0, ">= 0"),
        ("cooldown", 0 <= cfg.cooldown <= 1, "in [0, 1] (a fraction of the steps)"),
        ("grad_clip", cfg.grad_clip > 0, "> 0"),
        ("ema_decay", 0 <= cfg.ema_decay < 1, "in [0, 1) (0: no EMA)"),
        ("checkpoint_every", cfg.checkpoint_every >= 1, ">= 1"),
        ("log_every", cfg.log_every >= 1, ">= 1"),
        ("num_workers", cfg.num_workers >= 0, ">= 0"),
    )
    for key, ok, expected in rules:
        if not ok:
            raise ConfigError(f"{section}.{key} = {getattr(cfg, key)!r}: must be {expected}")


# What a run may change when it resumes (any other config difference is refused): none of these
# changes what a step computes. The lr schedule is a function of the step, so a resumed run with
# more ``steps`` (or another ``cooldown``) follows the new schedule from the step it resumes at:
# warmup is not repeated and a cooldown moves to the end of the new total. Batches depend only
# on (seed, rank, step), so ``num_workers`` does not change them; ``compile`` changes results by
# float rounding only.
RESUMABLE_KEYS = ("steps", "cooldown", "checkpoint_every", "log_every", "num_workers", "compile")
