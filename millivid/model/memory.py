"""Memory frames retrieved by camera pose (``plan.memory_frames``; an extension of the paper).

A plan's spans reach a fixed number of frames back (255 at the mini preset), so a place the
camera saw before that is gone, and a far frame the spans do reach is seen only at a coarse level.
A step with ``Step.memory`` also sees M frames at one level (``Memory.level``) chosen by how close
their camera is to the target frames' from a pool of earlier frames (``Memory.pool``): ``unheld``,
every frame before the target that the step's spans do not hold at the memory level (the
default); ``older``, every frame before the step's earliest span (``Step.first_frame``). The
same rule in training (ground-truth poses of the training video) and in
rollouts (the poses the model is conditioned on), so the model learns to use exactly what it will
be given. The target frames are cut into M consecutive groups and each group picks the closest
frame not yet picked, so a long coarse target gets memory along its whole path.

Closeness is the revisit rule of the evaluation (``millivid.evaluate.splits``) made continuous:
distance / 2 blocks + |yaw difference| / 15 degrees.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from millivid.plan.step import Step

BLOCKS = 2.0  # a distance of this many blocks counts as much as ...
DEGREES = 15.0  # ... a yaw difference of this many degrees


def pose_distance(a: Tensor, b: Tensor) -> Tensor:
    """[B, n, m] closeness of poses a [B, n, >=4] and b [B, m, >=4] (x, y, z, yaw°, ... as in the
    data format): horizontal distance / BLOCKS + |wrapped yaw difference| / DEGREES."""
    d = torch.cdist(a[..., :2].double(), b[..., :2].double())
    yaw = a[..., 3].double()[..., :, None] - b[..., 3].double()[..., None, :]
    yaw = (yaw + 180.0).remainder(360.0) - 180.0
    return (d / BLOCKS + yaw.abs() / DEGREES).float()


def memory_pool(step: Step) -> Tensor:
    """bool [P]: which of the frames 0..P-1 a step's memory may pick (``Memory.pool``)."""
    memory = step.memory
    if memory is None:
        raise ValueError("the step has no memory")
    if memory.pool == "older":
        return torch.ones(max(step.first_frame, 0), dtype=torch.bool)
    if memory.pool != "unheld":
        raise ValueError(f"unknown memory pool {memory.pool!r} (known: unheld, older)")
    pool = torch.ones(step.target.start, dtype=torch.bool)
    for span in step.context:
        if span.level == memory.level:
            pool[max(span.start, 0) : span.stop] = False
    return pool


def select_memory(poses: Tensor, step: Step) -> Tensor:
    """int64 [B, M]: the memory frames of ``step`` for each video of a batch (ascending; -1 where
    the pool holds fewer than M frames). poses: float [B, T, >=4]."""
    pool = memory_pool(step)
    count, before = step.memory.frames, len(pool)
    b = poses.shape[0]
    chosen = np.full((b, count), -1, dtype=np.int64)
    if pool.any():
        target = step.target
        dist = pose_distance(poses[:, target.start : target.stop].cpu(), poses[:, :before].cpu())
        # group j = target frames [bounds[j], bounds[j + 1]) (frame bounds[j] alone when that is
        # empty): its closeness to each pool frame, the frames outside the pool never chosen
        bounds = torch.linspace(0, target.frames, count + 1).long()[:-1].numpy()
        score = np.minimum.reduceat(dist.numpy(), bounds, axis=1)
        score[:, :, ~pool.numpy()] = np.inf
        rows = np.arange(b)
        # one group after the other (numpy: a Python loop of up to 256 groups per coarse step,
        # which the data loader runs for every sample)
        for j in range(min(count, int(pool.sum()))):
            newest = before - 1 - score[:, j, ::-1].argmin(1)  # ties: the most recent frame
            chosen[:, j] = newest
            score[rows, j + 1 :, newest] = np.inf
    return torch.from_numpy(np.sort(chosen, 1))


def gather_frames(latents: Tensor, frames: Tensor) -> Tensor:
    """[B, M, h, w, C]: frame ``frames[b, m]`` of video b of ``latents`` [B, T, h, w, C]; zeros
    where ``frames`` is -1."""
    index = frames.to(latents.device)
    picked = latents[torch.arange(latents.shape[0], device=latents.device)[:, None], index.clamp(0)]
    return picked.masked_fill((index < 0)[..., None, None, None], 0.0)
