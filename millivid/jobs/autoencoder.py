"""Autoencoder jobs: train on a dataset, encode a dataset into a latent cache, reconstruction grid."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from tqdm import tqdm

from millivid.atomic import read_json
from millivid.autoencoder.model import HierarchicalAutoencoder
from millivid.autoencoder.task import AutoencoderTask
from millivid.data.dataset import list_videos
from millivid.data.frames import DatasetFrames, default_cache_bytes
from millivid.data.latent_cache import write_cache_meta, write_latent_video
from millivid.data.videos import load_video, read_header
from millivid.device import resolve_device
from millivid.digest import weights_digest
from millivid.presets import Config
from millivid.train import load_checkpoint, load_weights_into, train, write_checkpoint
from millivid.train.checkpoint import (
    CheckpointError,
    checkpoint_folder,
    load_trainer_state,
    trained_step,
)
from millivid.train.run_start import check_run_start
from millivid.typed_config import from_dict, to_dict


def frame_bank(
    data: Path, max_videos: int | None = None, stride: int = 1, cache_bytes: int | None = None
) -> DatasetFrames:
    """Frames uint8 [N, H, W, 3] of (up to ``max_videos``) videos of a dataset, every
    ``stride``-th, read lazily; at most ``cache_bytes`` of decompressed videos are kept
    (``millivid.data.frames``)."""
    paths = list_videos(data)[:max_videos]
    if not paths:
        raise FileNotFoundError(
            f"{data}: no .npz videos found; convert a folder of mp4 or TECO/DFoT videos first: "
            f"millivid data import {data} --out DIR"
        )
    return DatasetFrames(paths, stride, cache_bytes)


def train_autoencoder(
    cfg: Config,
    data: Path,
    out: Path,
    resume: bool = False,
    device: str = "auto",
    max_videos: int | None = None,
    *,
    resume_from: Path | None = None,
    continuation: Path | None = None,
    continuation_keep: str = "all",
    overwrite: bool = False,
) -> Path:
    """Train the autoencoder of ``cfg`` on a dataset folder; calibrate the latent statistics.
    ``resume_from``, ``continuation``, ``continuation_keep``, ``overwrite``: as in
    ``millivid.train.train``."""
    if cfg.ae.kind == "pooled":
        raise ValueError(
            "ae.kind = pooled is not trained: it is a trained hierarchical autoencoder with its "
            "coarser levels pooled from its level 0 (millivid.jobs.autoencoder.derive_pooled)"
        )
    config = {"stage": "autoencoder", **to_dict(cfg)}
    starts = {"resume": resume, "resume_from": resume_from, "overwrite": overwrite}
    check_run_start(out, cfg.ae_train, config, **starts)  # before loading the frames
    workers = max(1, cfg.ae_train.num_workers)  # each DataLoader worker keeps its own cache
    frames = frame_bank(data, max_videos, cache_bytes=default_cache_bytes() // workers)
    size = cfg.ae.image_size
    if tuple(frames.shape[1:3]) != (size, size):
        raise ValueError(
            f"{data}: frames are {frames.shape[1]}x{frames.shape[2]} but ae.image_size = {size}; "
            f"write the dataset at that size (data make/import --size {size}) or set ae.image_size"
        )
    task = AutoencoderTask(cfg.ae, frames, cfg.ae_train.batch_size)
    continuing = {"continuation": continuation, "continuation_keep": continuation_keep}
    ckpt = train(task, cfg.ae_train, out, config=config, device=device, **continuing, **starts)
    model = load_autoencoder(out, device=str(resolve_device(device)), calibrated=False)
    model.calibrate(calibration_frames(frames).to(model.latent_mean.device))
    # rewrite the checkpoint with the statistics, keeping the trainer state for --resume
    write_checkpoint(out, model.state_dict(), config, load_trainer_state(out))
    return ckpt


def calibration_frames(frames: DatasetFrames) -> torch.Tensor:
    """The frames the latent statistics are calibrated on: 4,096 drawn with a fixed seed."""
    pick = sorted(random.Random(0).sample(range(len(frames)), min(len(frames), 4096)))
    return frames[pick]


def derive_pooled(hierarchical: Path, data: Path, out: Path, device: str = "auto") -> Path:
    """Write to the run folder ``out`` the trained hierarchical autoencoder ``hierarchical`` as
    kind ``pooled``: the same weights and level 0, the coarser levels its level 0 mean-pooled
    (the paper's Fig. 6 cascaded model), their latent statistics calibrated on ``data``'s frames
    (level 0 keeps its own, so its latents are the hierarchical ones bit for bit)."""
    config = load_checkpoint(hierarchical)[1]
    model = load_autoencoder(hierarchical, device=str(resolve_device(device)))
    if model.cfg.kind != "hierarchical":
        raise ValueError(
            f"{hierarchical}: a {model.cfg.kind} autoencoder; ae.kind = pooled is derived from a "
            "hierarchical one"
        )
    pooled = HierarchicalAutoencoder(replace(model.cfg, kind="pooled"))
    load_weights_into(pooled, model.state_dict(), str(hierarchical))
    pooled = pooled.to(model.latent_mean.device).eval()
    pooled.calibrate(calibration_frames(frame_bank(data)).to(model.latent_mean.device))
    pooled.latent_mean[0], pooled.latent_std[0] = model.latent_mean[0], model.latent_std[0]
    config = {**config, "ae": {**config["ae"], "kind": "pooled"}}
    return write_checkpoint(out, pooled.state_dict(), config)


def load_autoencoder(
    run: Path, device: str = "cpu", calibrated: bool = True
) -> HierarchicalAutoencoder:
    """The autoencoder of a run folder (or a shipped checkpoint folder), in eval mode.

    An untrained (step 0) run is refused, and with ``calibrated`` a run stopped before its
    latent statistics were set (``calibrate``), naming the checkpoint and how to finish it."""
    weights, config = load_checkpoint(run)
    if config.get("stage") != "autoencoder":
        raise ValueError(f"{run}: not an autoencoder checkpoint (stage={config.get('stage')!r})")
    cfg = from_dict(Config, {k: v for k, v in config.items() if k != "stage"}, where=str(run))
    step = trained_step(run)
    model = HierarchicalAutoencoder(cfg.ae)
    load_weights_into(model, weights, str(run))
    if calibrated and step is not None and not model.is_calibrated():
        raise CheckpointError(
            f"{checkpoint_folder(run)}: an autoencoder whose latent statistics were never set "
            f"(its training stopped at step {step} of {cfg.ae_train.steps}, before calibration): "
            f"finish it with millivid ae train --resume --out {run} (same preset, --set and --data)"
        )
    return model.to(device).eval()


@torch.no_grad()
def check_cache_autoencoder(out: Path, digest: str, run: Path) -> None:
    """Refuse to add latents to a cache at ``out`` that already holds another autoencoder's
    (its cache.json records the weights' digest): mixing them would train on two latent spaces."""
    meta = out / "cache.json"
    if not meta.is_file() or not any(out.glob("*.safetensors")):
        return
    try:
        recorded = read_json(meta)
    except ValueError as err:
        raise ValueError(f"{meta}: unreadable ({err}): encode into a new folder") from None
    if recorded.get("autoencoder_digest") != digest:
        raise ValueError(
            f"{out} holds latents of another autoencoder ({recorded.get('autoencoder', '?')}, "
            f"weights {recorded.get('autoencoder_digest') or 'not recorded'}; {run} has {digest}):"
            " encode into a new folder"
        )


class _VideosToEncode(torch.utils.data.Dataset):
    """Item k: (index in ``paths``, frames uint8 [T, H, W, 3], actions, poses or None) of the
    k-th video in ``todo``, read (and decompressed) in a DataLoader worker; or the error that
    names the bad file, for the main process to raise as it is (the loader would turn it into
    a RuntimeError holding a worker's traceback)."""

    def __init__(self, paths: list[Path], todo: list[int]) -> None:
        self.paths, self.todo = paths, todo

    def __len__(self) -> int:
        return len(self.todo)

    def __getitem__(self, k: int):
        i = self.todo[k]
        path = self.paths[i]
        try:
            keys = ("video", "actions") + (("poses",) if "poses" in read_header(path) else ())
            record = load_video(path, keys=keys)
        except (ValueError, OSError) as err:  # VideoFileError, a missing file: the user's to fix
            return err
        poses = torch.from_numpy(record.poses) if record.poses is not None else None
        return i, torch.from_numpy(record.video), torch.from_numpy(record.actions), poses


@torch.no_grad()
def encode_dataset(
    run: Path, data: Path, out: Path, device: str = "cpu", workers: int | None = None
) -> Path:
    """Encode every video of ``data`` into a latent cache at ``out`` (resumes, skipping done files).

    Frames go through the encoder in chunks of at most 65,536 tokens (512 mini frames, 192 paper
    frames), so memory stays bounded at any preset. ``workers`` DataLoader processes read the
    next videos meanwhile (decompressing a compressed mini video takes longer than encoding it
    on a GPU); 0 reads them in this process, None: min(4, cores)."""
    model = load_autoencoder(run, device)
    batch = max(1, min(512, 65_536 // sum(model.tokens_per_level())))
    digest = weights_digest(model)
    check_cache_autoencoder(out, digest, run)
    paths = list_videos(data)
    if not paths:
        raise FileNotFoundError(
            f"{data}: no .npz videos to encode: give a dataset folder (millivid data make or "
            "data import write one)"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_cache_meta(
        out,
        {
            "levels": model.cfg.levels,
            "channels": model.cfg.channels,
            "tokens_per_frame": model.tokens_per_level(),
            "shapes": [list(model.level_shape(lvl)) for lvl in range(model.cfg.levels)],
            "videos": len(paths),
            "autoencoder": str(run),
            "autoencoder_digest": digest,
            "autoencoder_kind": model.cfg.kind,
            "data": str(data),
        },
    )
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    todo = [i for i in range(len(paths)) if not (out / f"{i:06d}.safetensors").exists()]
    videos = torch.utils.data.DataLoader(
        _VideosToEncode(paths, todo),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
    )
    bar = tqdm(
        videos, desc="encode", unit="video", initial=len(paths) - len(todo), total=len(paths)
    )
    for item in bar:
        if isinstance(item, Exception):
            raise item
        i, frames, actions, poses = item
        chunks = [
            model.encode(frames[s : s + batch].to(device)) for s in range(0, len(frames), batch)
        ]
        levels = [torch.cat([c[lvl] for c in chunks]) for lvl in range(model.cfg.levels)]
        write_latent_video(out / f"{i:06d}.safetensors", levels, actions, poses)
    return out


@torch.no_grad()
def reconstruction_psnr(
    model: HierarchicalAutoencoder, frames: torch.Tensor, batch: int = 256
) -> list[float]:
    """Mean PSNR (dB, uint8 frames) of each level's reconstruction of frames uint8 [N,H,W,3]."""
    dev = model.latent_mean.device
    sums = [0.0] * model.cfg.levels
    for s in range(0, len(frames), batch):
        x = frames[s : s + batch].to(dev)
        latents = model.encode(x)
        for lvl, z in enumerate(latents):
            mse = ((model.decode(z, lvl).float() - x.float()) ** 2).mean((1, 2, 3)).clamp_min(1e-10)
            sums[lvl] += float((10 * torch.log10(255.0**2 / mse)).sum())
    return [v / len(frames) for v in sums]


@torch.no_grad()
def reconstruct_frames(
    model: HierarchicalAutoencoder, frames: np.ndarray, level: int = 0, batch: int = 256
) -> np.ndarray:
    """Frames uint8 [N,H,W,3] encoded and decoded from ``level``: uint8 [N,H,W,3] (what a
    latent model that predicted exactly their latents would show)."""
    dev = model.latent_mean.device
    out = [
        model.decode(model.encode(torch.from_numpy(frames[s : s + batch]).to(dev))[level], level)
        for s in range(0, len(frames), batch)
    ]
    return torch.cat(out).cpu().numpy() if out else frames.copy()


def frame_reconstructor(run: Path, device: str) -> Callable[[np.ndarray], np.ndarray]:
    """``reconstruct_frames`` with the autoencoder of ``run`` (the autoencoder baselines)."""
    return partial(reconstruct_frames, load_autoencoder(run, device))


@torch.no_grad()
def recon_grid(model: HierarchicalAutoencoder, video: Path, out: Path, frames: int = 4) -> Path:
    """Paper Fig. 5: rows = frames; columns = original, then each level's reconstruction."""
    clip = load_video(video, keys=("video",)).video
    idx = np.linspace(0, len(clip) - 1, frames).round().astype(int)
    x = torch.from_numpy(clip[idx]).to(model.latent_mean.device)
    columns = [x] + [model.decode(z, lvl) for lvl, z in enumerate(model.encode(x))]
    grid = torch.cat(
        [torch.cat(list(col), dim=0) for col in columns], dim=1
    )  # [frames*H, cols*W, 3]
    out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(out, grid.cpu().numpy())
    return out


__all__ = [
    "encode_dataset",
    "frame_bank",
    "frame_reconstructor",
    "load_autoencoder",
    "recon_grid",
    "reconstruct_frames",
    "reconstruction_psnr",
    "train_autoencoder",
]
