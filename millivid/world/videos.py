"""``make_videos``: seeds -> rendered first-person videos with actions, poses, labels and depth."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import torch
from tqdm import tqdm

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


def video_actions(
    seeds: Sequence[int],
    cfg: WorldConfig,
    test: bool = False,
    processes: int = 1,
    progress: bool = False,
) -> torch.Tensor:
    """Action sequences int64 [B, T] of ``seeds``: the law's first draw, or the A.1 choice (test
    videos, and training videos with ``world.train_actions = "revisit"``). ``processes`` > 1
    spreads the choices over that many processes, one torch thread each: the same choices,
    about that many times faster on as many cores (a choice is ~40 ms of CPU)."""
    seeds = [int(s) for s in seeds]
    if not (test or cfg.train_actions == "revisit"):
        rows = [sample_actions(action_rng(s), cfg) for s in seeds]
        return torch.tensor(rows, dtype=torch.long).reshape(len(seeds), cfg.frames)
    if processes <= 1 or len(seeds) < 2 * processes:
        rows = _progress(len(seeds), progress, (_chosen(s, cfg) for s in seeds))
    else:
        spawn = multiprocessing.get_context("spawn")  # no fork of a process that may hold CUDA
        with ProcessPoolExecutor(processes, spawn, torch.set_num_threads, (1,)) as pool:
            chunk = max(1, len(seeds) // (4 * processes))
            rows = _progress(
                len(seeds), progress, pool.map(_chosen, seeds, repeat(cfg), chunksize=chunk)
            )
    if not rows:
        return torch.empty(0, cfg.frames, dtype=torch.long)
    return torch.from_numpy(np.stack(rows))


def _progress(total: int, show: bool, rows) -> list[np.ndarray]:
    """The choices of ``rows`` (an iterator), with a progress bar when ``show``."""
    return list(tqdm(rows, total=total, desc="choose actions", unit="video", disable=not show))


def _chosen(seed: int, cfg: WorldConfig) -> np.ndarray:
    """The A.1 choice of one seed, int64 [T] (a process pool's task)."""
    return select_test_actions(seed, cfg).actions.numpy()


def make_videos(
    seeds: Sequence[int],
    cfg: WorldConfig,
    device: str | torch.device = "cpu",
    test: bool = False,
    actions: torch.Tensor | None = None,
) -> WorldVideos:
    """Render one video per seed (same seed => same bytes on one device, whatever the batch).

    ``actions`` int64 [B, T]: these instead of the seeds' own (``video_actions``)."""
    if len(seeds) == 0:
        raise ValueError("make_videos needs at least one seed")
    device = torch.device(device)
    world = generate_worlds(list(seeds), cfg, device)
    if actions is None:
        actions = video_actions(seeds, cfg, test)
    elif tuple(actions.shape) != (len(seeds), cfg.frames):
        raise ValueError(
            f"make_videos: actions of shape {tuple(actions.shape)} for {len(seeds)} seeds of "
            f"{cfg.frames} frames; expected ({len(seeds)}, {cfg.frames})"
        )
    actions = actions.to(device=device, dtype=torch.long)
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
