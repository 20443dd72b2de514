"""Every frame of a dataset as one lazily read sequence, for models trained on single frames.

``DatasetFrames(paths)`` stands in for a uint8 tensor [N, H, W, 3] holding the frames of all the
videos in order (video 0's, then video 1's, ...): ``len()``, ``shape``, ``dtype``, ``dim()`` and
``frames[index]`` for int frame indices. Opening it reads only each file's header (frame count,
size, where the frames lie); indexing reads just what it needs:

* from an uncompressed file (``save_video(compress=False)``, ``data make/import --store``) a
  lookup reads only the frames indexed, in place, and keeps nothing;
* a compressed file is decompressed whole and kept in a cache of the most recently used videos,
  at most ``cache_bytes`` (default ``default_cache_bytes()``; the newest video always stays).
  While the compressed videos fit, each is decompressed once; beyond that most lookups
  decompress a whole video for one frame, so large training sets should be stored uncompressed
  (a warning says so).

Memory therefore stays bounded whatever the dataset's size, and the frames returned never depend
on the cache. A copy sent to a DataLoader worker starts with an empty cache of its own.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from millivid.data.errors import VideoFileError
from millivid.data.videos import array_layout, load_arrays


def default_cache_bytes() -> int:
    """A quarter of this machine's memory, at most 16 GiB (2 GiB where it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 2**31
    return min(total // 4, 2**34)


def mixed_sizes(sizes: dict[tuple[int, int], list[Path]], shown: int = 5) -> str:
    """'64x64: 3 videos (a.npz, …); 48x80: 1 video (c.mp4)' for frame sizes (H, W) -> files,
    most common size first."""
    parts = []
    for (h, w), paths in sorted(sizes.items(), key=lambda kv: -len(kv[1])):
        names = ", ".join(str(p) for p in paths[:shown])
        more = f", and {len(paths) - shown} more" if len(paths) > shown else ""
        parts.append(f"{h}x{w}: {len(paths)} video{'s' * (len(paths) > 1)} ({names}{more})")
    return "; ".join(parts)


def video_layout(path: str | os.PathLike) -> tuple[tuple[int, ...], int | None]:
    """(shape [T, H, W, 3], data offset or None) of a video file's ``video`` array, from its
    header (``array_layout``); an error naming the file unless it holds uint8 RGB frames."""
    shape, dtype, offset = array_layout(path, "video")
    if dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3:
        raise VideoFileError(
            path, "video", f"expected uint8 [T, H, W, 3], got {dtype} {list(shape)}"
        )
    return shape, offset


class DatasetFrames:
    """The frames of ``paths`` (millivid .npz videos of one frame size), every ``stride``-th,
    as a lazily read uint8 [N, H, W, 3] sequence (module docstring)."""

    dtype = torch.uint8

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        stride: int = 1,
        cache_bytes: int | None = None,
        progress: bool = True,
    ):
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("DatasetFrames needs at least one video")
        cache_bytes = default_cache_bytes() if cache_bytes is None else cache_bytes
        self.stride, self.cache_bytes = stride, cache_bytes
        lengths, offsets, sizes = [], [], {}
        for path in tqdm(self.paths, desc="index", unit="video", disable=not progress):
            shape, offset = video_layout(path)
            lengths.append(shape[0])
            offsets.append(-1 if offset is None else offset)
            sizes.setdefault(tuple(shape[1:3]), []).append(path)
        if len(sizes) > 1:
            raise ValueError(
                f"videos of different frame sizes: {mixed_sizes(sizes)}; "
                "convert them to one size with `millivid data import SRC --out DIR --size S`"
            )
        ((height, width),) = sizes
        self.lengths, self.offsets = np.array(lengths), np.array(offsets)
        counts = -(-self.lengths // stride)
        self.starts = np.concatenate([[0], np.cumsum(counts)])  # video v: [starts[v], starts[v+1])
        if self.starts[-1] == 0:
            raise ValueError(f"{self.paths[0].parent}: the videos hold no frames")
        self.shape = torch.Size((int(self.starts[-1]), height, width, 3))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        packed = int(self.lengths[self.offsets < 0].sum()) * height * width * 3
        if packed > cache_bytes:
            warnings.warn(
                f"{self.paths[0].parent}: the compressed videos hold {packed / 2**30:.1f} GiB of "
                f"frames, more than the frame cache ({cache_bytes / 2**30:.1f} GiB): most lookups "
                "will decompress a whole video; write the dataset uncompressed (--store)",
                stacklevel=2,
            )

    def __len__(self) -> int:
        return self.shape[0]

    def dim(self) -> int:
        return 4

    def __getitem__(self, index) -> torch.Tensor:
        """Frames uint8 [*index.shape, H, W, 3] at int frame indices ``index``."""
        wanted = np.asarray(index, dtype=np.int64)
        flat = wanted.reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= len(self)):
            raise IndexError(f"frame index out of range [0, {len(self)})")
        video = np.searchsorted(self.starts, flat, side="right") - 1
        out = np.empty((len(flat), *self.shape[1:]), np.uint8)
        for v in np.unique(video):
            rows = video == v
            local = (flat[rows] - self.starts[v]) * self.stride
            out[rows] = self._read(int(v), local) if self.offsets[v] >= 0 else self._video(v)[local]
        return torch.from_numpy(out.reshape(*wanted.shape, *self.shape[1:]))

    def _read(self, v: int, local: np.ndarray) -> np.ndarray:
        """Frames ``local`` [K] of uncompressed video ``v``, read in place: uint8 [K, H, W, 3]."""
        size = int(np.prod(self.shape[1:]))
        with open(self.paths[v], "rb") as f:
            parts = []
            for i in local:
                f.seek(int(self.offsets[v]) + int(i) * size)
                parts.append(f.read(size))
        data = b"".join(parts)
        if len(data) != len(local) * size:
            raise VideoFileError(self.paths[v], "video", "truncated data (file changed?)")
        return np.frombuffer(data, np.uint8).reshape(len(local), *self.shape[1:])

    def _video(self, v: int) -> np.ndarray:
        """Compressed video ``v``'s frames [T, H, W, 3], from the cache or decompressed into it
        (dropping the least recently used videos until it fits ``cache_bytes``)."""
        if v in self._cache:
            self._cache.move_to_end(v)
            return self._cache[v]
        self._cache[v] = array = load_arrays(self.paths[v], ["video"])["video"]
        while (
            len(self._cache) > 1 and sum(a.nbytes for a in self._cache.values()) > self.cache_bytes
        ):
            self._cache.popitem(last=False)
        return array

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": OrderedDict()}  # a worker fills its own
