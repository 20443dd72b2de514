"""Trivial baselines, scored like any method: what a results table must beat to show memory.

* ``copy-last``: every generated frame repeats the last context frame (no motion, no memory).
* ``context-mean``: one static frame, the per-pixel mean of the context (regression to the mean
  scene: what a blurry model converges to).
* ``nearest-pose``: each generated frame is the context frame whose ground-truth pose is nearest
  (``splits.nearest_context``, the gap that defines revisits): pure recall, no generation. An
  oracle: it reads the ground-truth poses of the generated frames.

Through an autoencoder (``millivid baseline --ae DIR``; ``reproduce`` writes the last two):

* ``<kind>-ae``: a baseline's generated frames encoded and decoded at level 0, what a latent
  model that produced exactly those frames would show after its decoder.
* ``autoencoder``: the ground truth's generated frames encoded and decoded at level 0, the
  ceiling of any model that decodes through that autoencoder.
* ``nearest-pose-ae`` is then the fair recall oracle for latent models: recalling the nearest
  context frame perfectly, through the same decoder.

Each baseline writes the context frames followed by its generated frames, the same layout as a
rollout, so ``millivid evaluate --pred-dir`` scores it as a method named after its folder.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from millivid.data.videos import VideoRecord, load_video, read_ahead, read_header, save_video
from millivid.evaluate.config import EvalConfig
from millivid.evaluate.splits import nearest_context

BASELINES = ("copy-last", "context-mean", "nearest-pose")
AE_BASELINES = ("autoencoder", *(f"{k}-ae" for k in BASELINES))  # need an autoencoder
KNOWN = BASELINES + AE_BASELINES

Reconstruct = Callable[[np.ndarray], np.ndarray]  # uint8 [N, H, W, 3] -> the same, decoded


def copy_last(context: np.ndarray, n: int) -> np.ndarray:
    """uint8 [n, H, W, 3]: the last of the context frames uint8 [A, H, W, 3], n times."""
    return np.repeat(context[-1:], n, axis=0)


def context_mean(context: np.ndarray, n: int) -> np.ndarray:
    """uint8 [n, H, W, 3]: the per-pixel mean of the context frames uint8 [A, H, W, 3], rounded
    (half to even), n times."""
    mean = np.rint(context.astype(np.float64).mean(axis=0)).astype(np.uint8)
    return np.repeat(mean[None], n, axis=0)


def nearest_pose(
    context: np.ndarray,
    context_poses: np.ndarray,
    poses: np.ndarray,
    distance: float,
    yaw: float,
) -> np.ndarray:
    """uint8 [N, H, W, 3]: for each pose float [N, 5] the context frame (uint8 [A, H, W, 3]) whose
    pose (context_poses float [A, 5]) is nearest by the revisit gap."""
    index, _ = nearest_context(poses, context_poses, distance, yaw)
    return context[index]


def baseline_video(
    kind: str,
    video: np.ndarray,
    poses: np.ndarray | None,
    context: int,
    cfg: EvalConfig,
    reconstruct: Reconstruct | None = None,
) -> np.ndarray:
    """uint8 [T, H, W, 3]: the first ``context`` frames of the ground truth video uint8
    [T, H, W, 3], then the ``kind`` baseline's T - context generated frames (poses float [T, 5]
    of the ground truth: nearest-pose only; ``reconstruct``: the autoencoder kinds only)."""
    if not 0 < context < len(video):
        raise ValueError(f"--context {context} must be in (0, {len(video)}) (frames of the video)")
    ctx, n = video[:context], len(video) - context
    base = kind.removesuffix("-ae") if kind in AE_BASELINES else kind
    if kind in AE_BASELINES and reconstruct is None:
        raise ValueError(f"baseline {kind} needs an autoencoder (--ae DIR)")
    if base == "autoencoder":
        generated = video[context:]
    elif base == "copy-last":
        generated = copy_last(ctx, n)
    elif base == "context-mean":
        generated = context_mean(ctx, n)
    elif base == "nearest-pose":
        if poses is None:
            raise ValueError(f"{kind} needs the ground-truth 'poses' array")
        d, y = cfg.revisit_distance, cfg.revisit_yaw
        generated = nearest_pose(ctx, poses[:context], poses[context:], d, y)
    else:
        raise ValueError(f"unknown baseline {kind!r} (known: {', '.join(KNOWN)}, all)")
    if kind in AE_BASELINES:
        generated = reconstruct(generated)
    return np.concatenate([ctx, generated])


def parse_kinds(kind: str, autoencoder: bool = False) -> tuple[str, ...]:
    """'all' -> every baseline (with ``autoencoder``: also the autoencoder ones);
    'copy-last,nearest-pose' -> those two; unknown names, or autoencoder kinds without one,
    error."""
    if kind == "all":
        return KNOWN if autoencoder else BASELINES
    kinds = tuple(k.strip() for k in kind.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KNOWN]
    if unknown or not kinds:
        raise ValueError(f"unknown baseline {kind!r} (known: {', '.join(KNOWN)}, all)")
    need = [k for k in kinds if k in AE_BASELINES]
    if need and not autoencoder:
        raise ValueError(f"baseline {', '.join(need)} needs an autoencoder (--ae DIR)")
    return kinds


def write_baselines(
    gt_dir: Path,
    out: Path,
    kinds: Sequence[str],
    context: int,
    cfg: EvalConfig,
    reconstruct: Reconstruct | None = None,
    subfolders: bool | None = None,
    workers: int | None = None,
) -> dict[str, list[Path]]:
    """Write every ground-truth video of ``gt_dir`` as each baseline in ``kinds``.

    ``out/<kind>/<video>.npz`` with ``subfolders`` (default: when there are several kinds, so
    that ``out`` is the ``--pred-dir`` of ``millivid evaluate``), else ``out/<video>.npz``.
    Files hold ``video`` (context then generated frames) and the ground-truth ``actions`` when
    present. Each video is read once for every kind; ``workers`` threads (default min(4,
    cores)) read the next videos and write the finished ones. Returns {kind: written paths}.
    """
    gt_files = sorted(Path(gt_dir).glob("*.npz"))
    if not gt_files:
        raise FileNotFoundError(f"no .npz ground-truth videos in {gt_dir}")
    split = len(kinds) > 1 if subfolders is None else subfolders
    folders = {k: Path(out) / k if split else Path(out) for k in kinds}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {k: [] for k in kinds}
    workers = workers or min(4, os.cpu_count() or 1)

    def read(gt: Path) -> VideoRecord:
        return load_video(gt, keys=[k for k in ("actions", "poses") if k in read_header(gt)])

    with ThreadPoolExecutor(workers) as pool:
        writes: deque[Future] = deque()
        for gt, rec in zip(gt_files, read_ahead(pool, read, gt_files, workers)):
            for k in kinds:
                try:
                    video = baseline_video(k, rec.video, rec.poses, context, cfg, reconstruct)
                except ValueError as err:
                    raise ValueError(f"{gt}: {err}") from None
                path = folders[k] / gt.name
                writes.append(
                    pool.submit(save_video, path, VideoRecord(video=video, actions=rec.actions))
                )
                written[k].append(path)
            while len(writes) > 2 * workers:  # bound the memory held by queued writes
                writes.popleft().result()
        for w in writes:
            w.result()
    return written
