"""``make_videos``: seeds -> rendered first-person videos with actions, poses, labels and depth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from millivid.world.agent import sample_actions, simulate
from millivid.world.config import WorldConfig
from millivid.world.render import Renderer
from millivid.world.terrain import generate_worlds
from millivid.world.testset import action_rng, select_test_actions


@dataclass
class WorldVideos:
    """A batch of world videos, torch tensors on one device.

    video uint8 [B, T, H, W, 3]; actions int64 [B, T] (0 forward, 1 left, 2 right; action t moved
    the agent from pose t-1 to pose t); poses float32 [B, T, 5] (x, y, z eye height, yaw°
    unwrapped, pitch°); labels uint8 [B, T, H, W] (``BLOCK_KINDS`` id, 0 = sky); depth float16
    [B, T, H, W] (blocks along the ray, ``view_distance`` for sky).
    """

    video: torch.Tensor
    actions: torch.Tensor
    poses: torch.Tensor
    labels: torch.Tensor
    depth: torch.Tensor


def video_actions(seeds: Sequence[int], cfg: WorldConfig, test: bool = False) -> torch.Tensor:
    """Action sequences int64 [B, T] of ``seeds``: the law's first draw, or the A.1 choice (test
    videos, and training videos with ``world.train_actions = "revisit"``)."""
    if test or cfg.train_actions == "revisit":
        rows = [select_test_actions(int(s), cfg).actions for s in seeds]
        return torch.stack(rows)
    rows = [sample_actions(action_rng(int(s)), cfg) for s in seeds]
    return torch.tensor(rows, dtype=torch.long)


def make_videos(
    seeds: Sequence[int],
    cfg: WorldConfig,
    device: str | torch.device = "cpu",
    test: bool = False,
) -> WorldVideos:
    """Render one video per seed (same seed => same bytes on one device, whatever the batch)."""
    if len(seeds) == 0:
        raise ValueError("make_videos needs at least one seed")
    device = torch.device(device)
    world = generate_worlds(list(seeds), cfg, device)
    actions = video_actions(seeds, cfg, test).to(device)
    poses, _ = simulate(world, actions, cfg)
    bsz, frames = actions.shape
    b = torch.arange(bsz, device=device).repeat_interleave(frames)
    rgb, labels, depth = Renderer(cfg, device).render(world, b, poses.view(-1, 5))
    size = cfg.size
    return WorldVideos(
        video=rgb.view(bsz, frames, size, size, 3),
        actions=actions,
        poses=poses,
        labels=labels.view(bsz, frames, size, size),
        depth=depth.view(bsz, frames, size, size),
    )
