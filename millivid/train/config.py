"""Optimisation and checkpointing configuration shared by every trainer (paper A.2)."""

from __future__ import annotations

from dataclasses import dataclass


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


# What a run may change when it resumes (any other config difference is refused): none of these
# changes what a step computes. The lr schedule is a function of the step, so a resumed run with
# more ``steps`` (or another ``cooldown``) follows the new schedule from the step it resumes at:
# warmup is not repeated and a cooldown moves to the end of the new total. Batches depend only
# on (seed, rank, step), so ``num_workers`` does not change them; ``compile`` changes results by
# float rounding only.
RESUMABLE_KEYS = ("steps", "cooldown", "checkpoint_every", "log_every", "num_workers", "compile")


PRESETS = {
    "tiny": TrainConfig(
        steps=200, batch_size=8, warmup_steps=20, checkpoint_every=100, log_every=10
    ),
    "mini": TrainConfig(steps=20_000, batch_size=64, warmup_steps=500, ema_decay=0.999),
    "paper": TrainConfig(steps=192_000, batch_size=48, warmup_steps=2_000),
}
