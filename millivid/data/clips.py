"""Clip sampling for training: random windows of ``length`` frames from random videos.

Sample ``k`` is decided by ``(seed, k)`` alone (``numpy`` ``default_rng([seed, k])``), so the
stream is the same with 0 or 8 DataLoader workers, on any machine, and training resumes exactly
by starting at ``k = step * batch_size`` (``ClipStream(start_step=step)``). No global RNG is
touched, so worker seeding cannot change the data.

A source is anything with ``len()`` and ``load(i)`` returning either a ``VideoRecord`` (frames;
``VideoDataset``) or ``(levels, actions)`` with levels a list of [T, h_l, w_l, C] tensors
(latents; ``LatentCache``). A ``VideoDataset`` with ``skip_bad=True`` has bad files redrawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from millivid.data.videos import VideoRecord

NO_ACTION = -1  # action id of videos without actions (e.g. a folder of mp4 files)


def _load(source: Any, index: int) -> tuple[Any, torch.Tensor] | None:
    """(frames uint8 [T,H,W,3] or list of latent levels [T,h,w,C], actions int64 [T]) or None."""
    item = source.try_load(index) if hasattr(source, "try_load") else source.load(index)
    return _as_clip(item)


def _as_clip(item: Any) -> tuple[Any, torch.Tensor] | None:
    """A loaded ``VideoRecord`` or ``(levels, actions)`` as (frames or levels, actions int64)."""
    if item is None:
        return None
    if isinstance(item, VideoRecord):
        frames = torch.from_numpy(item.video)
        actions = item.actions
        if actions is None:
            return frames, torch.full((len(frames),), NO_ACTION, dtype=torch.long)
        return frames, torch.as_tensor(actions, dtype=torch.long)
    levels, actions = item
    return list(levels), torch.as_tensor(actions, dtype=torch.long)


def _frames(x: Any) -> int:
    return int(x[0].shape[0]) if isinstance(x, list) else int(x.shape[0])


def _window(x: Any, start: int, stop: int) -> Any:
    if isinstance(x, list):
        return [level[start:stop].clone() for level in x]
    return x[start:stop].clone()


class ClipDataset(Dataset):
    """Map-style: item ``k`` -> (window [length, ...] of frames or latent levels, actions [length]).

    ``samples`` is the nominal length (index space); any ``k >= 0`` is valid.
    """

    def __init__(
        self, source: Any, length: int, seed: int = 0, samples: int = 2**40, tries: int = 64
    ):
        if length < 1:
            raise ValueError(f"clip length must be >= 1, got {length}")
        if len(source) == 0:
            raise ValueError("clip source has no videos")
        self.source, self.length, self.seed = source, length, seed
        self.samples, self.tries = samples, tries

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, k: int):
        rng = np.random.default_rng([self.seed, int(k)])
        windowed = callable(getattr(self.source, "load_window", None)) and callable(
            getattr(self.source, "frames", None)
        )
        for _ in range(self.tries):
            index = int(rng.integers(len(self.source)))
            count = self.source.frames(index) if windowed else None
            if count is not None:  # read only the window (memory-mapped when uncompressed)
                if count < self.length:
                    continue
                start = int(rng.integers(count - self.length + 1))
                loaded = _as_clip(self.source.load_window(index, start, start + self.length))
                if loaded is not None:
                    return loaded
                continue
            loaded = _load(self.source, index)
            if loaded is None or _frames(loaded[0]) < self.length:
                continue  # bad file (skip_bad) or video shorter than the clip: draw again
            x, actions = loaded
            start = int(rng.integers(_frames(x) - self.length + 1))
            stop = start + self.length
            return _window(x, start, stop), actions[start:stop].clone()
        raise ValueError(
            f"no video of at least {self.length} frames found in {self.tries} draws "
            f"(sample {k}); are the clips longer than the videos, or the files bad?"
        )


class ClipStream(IterableDataset):
    """Endless (or ``steps``-long) stream of clips in batch order, from ``start_step`` on.

    Use with ``DataLoader(stream, batch_size=batch_size, num_workers=W)``: worker ``w`` builds
    the batches ``b`` with ``b % W == w`` and the DataLoader returns them round-robin, so batch
    ``b`` holds samples ``b * batch_size ...`` whatever ``W`` is.
    """

    def __init__(
        self, clips: ClipDataset, batch_size: int, start_step: int = 0, steps: int | None = None
    ):
        self.clips, self.batch_size = clips, batch_size
        self.start_step, self.steps = start_step, steps

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        step = self.start_step + worker
        while self.steps is None or step < self.start_step + self.steps:
            first = step * self.batch_size
            for k in range(first, first + self.batch_size):
                yield self.clips[k]
            step += workers


def clip_loader(
    source: Any,
    length: int,
    batch_size: int,
    seed: int = 0,
    start_step: int = 0,
    steps: int | None = None,
    num_workers: int = 0,
) -> DataLoader:
    """Batches of clips: (frames uint8 [B, L, H, W, 3] or list of [B, L, h, w, C], actions [B, L])."""
    stream = ClipStream(ClipDataset(source, length, seed), batch_size, start_step, steps)
    return DataLoader(
        stream,
        batch_size=batch_size,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
