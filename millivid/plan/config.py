"""Token budgets of a rollout plan (DESIGN.md, "The coarse-to-fine rollout")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanConfig:
    """Per-level token counts N_l, per-level context frames C_l and the target token budget B."""

    tokens: tuple[int, ...] = (64, 16, 4, 1)
    context: tuple[int, ...] = (3, 12, 48, 192)
    target_tokens: int = 192
    fullres_context: int = 7  # full-res baseline: K context + K target level-0 frames
    # training only: relative weight of each target level when drawing training steps (finest
    # first); empty = every step as often as rollouts take it (coarse steps are then rare)
    level_weights: tuple[float, ...] = ()
    # every step also sees this many frames at ``memory_level`` retrieved by camera pose
    # (``Step.memory``; needs poses); 0 = the paper's plans. ``memory_pool``: unheld (frames
    # before the target its spans do not hold at that level) or older (before all its spans)
    memory_frames: int = 0
    memory_level: int = 0
    memory_pool: str = "unheld"
    # per target level (finest first), the level a step's memory frames are seen at instead of
    # ``memory_level``, as many frames as fill the same tokens (memory_frames x tokens[memory_
    # level]); empty = ``memory_level`` for every step
    memory_levels: tuple[int, ...] = ()
