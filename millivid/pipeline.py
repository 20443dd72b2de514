"""The Python API in three lines: a video model, its autoencoder and config as one object.

    pipe = millivid.load("checkpoints/mini/millivid")
    frames = pipe(context_frames, actions, poses=poses, steps=16)  # uint8 [frames, H, W, 3]
    pipe.save("my-model")  # model.safetensors + config.json, ae/ beside them

A call rolls out in memory what ``millivid generate`` rolls out to files: the same request
checks (``millivid.rollout.request``), the same rollout (``rollout_latents``, without the saved state) and
the same decoding (``decode_frames``), so for the same seed the frames are the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from millivid.atomic import read_json
from millivid.autoencoder.model import HierarchicalAutoencoder
from millivid.device import resolve_device
from millivid.digest import weights_digest
from millivid.jobs.autoencoder import load_autoencoder
from millivid.presets import Config
from millivid.rollout.generate import load_video_model, video_checkpoint_config
from millivid.rollout.request import GenerateRequest, check_inputs
from millivid.rollout.resumable import decode_frames, rollout_latents
from millivid.train.checkpoint import fresh_tmp_folder, latest_checkpoint, swap_in_folder
from millivid.typed_config import to_dict

SHIPPED_AE = Path(__file__).resolve().parents[1] / "checkpoints" / "mini" / "ae"
AE_FOLDER = "ae"  # the autoencoder's folder inside a saved pipeline (and beside a run)
CHECKPOINT_FILES = {"model.safetensors", "config.json"}
SAVED_NAMES = CHECKPOINT_FILES | {AE_FOLDER}  # what ``Pipeline.save`` writes


def checkpoint_folder(path: Path) -> Path | None:
    """The folder holding ``model.safetensors`` + ``config.json`` of a checkpoint or run folder
    (``load_checkpoint``'s rule), or None when ``path`` holds no checkpoint."""
    if (path / "model.safetensors").is_file() and (path / "config.json").is_file():
        return path
    try:
        return latest_checkpoint(path)
    except ValueError:
        return None


def autoencoder_candidates(path: Path, cfg: Config) -> list[Path]:
    """Where ``load`` looks for the autoencoder of the video model at ``path``, in order: its
    own ``ae/`` (a saved pipeline), the ``ae/`` beside it (``millivid generate``'s default, e.g.
    checkpoints/mini/ae for checkpoints/mini/millivid), and the shipped mini autoencoder for a
    mini-preset model."""
    found = [path / AE_FOLDER, path.parent / AE_FOLDER]
    if cfg.preset == "mini":
        found.append(SHIPPED_AE)
    unique = {p.resolve(): p for p in reversed(found)}  # first spelling of each folder wins
    return [p for p in found if unique[p.resolve()] is p]


def find_autoencoder(path: Path, cfg: Config) -> Path:
    """The first of ``autoencoder_candidates`` that holds a checkpoint; an error naming every
    folder tried when none does."""
    tried = autoencoder_candidates(path, cfg)
    for candidate in tried:
        if checkpoint_folder(candidate) is not None:
            return candidate
    raise FileNotFoundError(
        f"{path}: no autoencoder found (tried {', '.join(str(p) for p in tried)}): pass "
        "ae=<autoencoder folder> (millivid ae train --out)"
    )


def read_config(path: Path) -> dict[str, Any]:
    """The config.json of the checkpoint at ``path`` (a checkpoint or run folder)."""
    folder = checkpoint_folder(path)
    if folder is None:
        raise FileNotFoundError(f"{path}: no checkpoint (model.safetensors + config.json)")
    return read_json(folder / "config.json")


def check_autoencoder(path: Path, ae_path: Path, autoencoder: torch.nn.Module) -> None:
    """Refuse an autoencoder other than the one whose latents trained the video model at
    ``path``: its config records that autoencoder's weight digest (``autoencoder_digest``, from
    the latent cache). Models saved without the record are not checked."""
    expected = read_config(path).get("autoencoder_digest")
    if expected and (found := weights_digest(autoencoder)) != expected:
        raise ValueError(
            f"{ae_path} is not the autoencoder {path} was trained with (its weights {found}, "
            f"the model's latents came from {expected}): give --ae the autoencoder whose "
            "latent cache trained the model"
        )


def _batched(name: str, array: Any, per_video: str, batch: int | None) -> np.ndarray:
    """``array`` with a leading batch axis: shaped ``per_video`` (e.g. ``[T', 5]``) for one
    video, with one more leading axis of ``batch`` when the context frames came as a batch."""
    array = np.asarray(array)
    ndim = per_video.count(",") + 1
    if batch is None and array.ndim == ndim:
        return array[None]
    if batch is not None and array.ndim == ndim + 1 and len(array) == batch:
        return array
    want = per_video if batch is None else f"[{batch}, {per_video[1:]}"
    raise ValueError(f"{name}: expected {want} for these context frames, got {array.shape}")


def _previous_save(path: Path) -> bool:
    """``path`` is an empty folder or holds exactly what ``Pipeline.save`` writes."""
    if not path.is_dir() or not {p.name for p in path.iterdir()} <= SAVED_NAMES:
        return False
    if not any(path.iterdir()):
        return True
    ae = path / AE_FOLDER
    try:
        stage = read_json(path / "config.json").get("stage")
    except (OSError, ValueError, AttributeError):
        return False
    return stage == "video" and ae.is_dir() and {p.name for p in ae.iterdir()} <= CHECKPOINT_FILES


class Pipeline:
    """A video model, its autoencoder and config on one device: ``pipe(context, actions)``
    generates frames, ``pipe.save(folder)`` writes a folder that ``millivid.load`` reads."""

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: Config,
        method: str,
        ae: HierarchicalAutoencoder,
        device: str = "cpu",
        ae_config: dict[str, Any] | None = None,
    ) -> None:
        """``ae_config``: the autoencoder checkpoint's config.json, written back by ``save``
        (default: the video model's config with the autoencoder's section)."""
        self.model, self.cfg, self.method, self.ae, self.device = model, cfg, method, ae, device
        if ae_config is None:
            ae_config = {**to_dict(cfg), "ae": to_dict(ae.cfg)}
        self.ae_config = {"stage": "autoencoder", **ae_config}

    def __repr__(self) -> str:
        return (
            f"Pipeline(method={self.method!r}, preset={self.cfg.preset!r}, "
            f"condition={self.cfg.model.condition!r}, device={self.device!r})"
        )

    def __call__(
        self,
        context_frames: np.ndarray,
        actions: np.ndarray,
        frames: int | None = None,
        *,
        poses: np.ndarray | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        context_noise: float | None = None,
        eta: float | None = None,
        seed: int = 0,
        progress: bool = False,
        bf16: bool | None = None,
    ) -> np.ndarray:
        """The ``frames`` frames after ``context_frames``: uint8 [frames, H, W, 3].

        ``context_frames``: uint8 [T, H, W, 3] (H = W = the autoencoder's image size);
        ``actions``: int [T'] with T' >= T + frames (0 forward, 1 left, 2 right, 3 none: the
        null action of videos imported without actions; the last one repeats where the plan
        runs past them); ``frames`` defaults to T' - T; ``poses``: float
        [T', 5] (x, y, z, yaw, pitch), needed by pose-conditioned models
        (``cfg.model.uses_poses``), ignored by the others; ``steps``: DDIM steps per rollout
        step, ``guidance``: CFG scale and ``context_noise``: the noise level of the generated
        coarse context (``diffusion.sample_context_noise``; default: the config's); ``eta``: DDIM
        eta (0 deterministic, 1 DDPM steps; default: the config's); ``seed``: the noise seed;
        ``progress``: a progress bar over rollout steps; ``bf16``: the model under bf16 autocast
        (default: on CUDA).
        A batch of videos, context_frames [B, T, H, W, 3], actions [B, T'], poses [B, T', 5],
        gives [B, frames, H, W, 3], rolled out together (one noise draw per rollout step).
        """
        batch, video, acts, pos = _batch_inputs(
            context_frames, actions, poses, self.ae.cfg.image_size
        )
        context = video.shape[1]
        if frames is None:
            frames = acts.shape[1] - context
        if frames < 1:
            raise ValueError(
                f"frames={frames}: nothing to generate ({acts.shape[1]} actions for {context} "
                "context frames): give actions for the context and the frames to generate"
            )
        req = GenerateRequest(
            frames=video,
            actions=acts,
            context=context,
            length=frames,
            seed=seed,
            poses=pos,
            steps=steps,
            guidance=guidance,
            context_noise=context_noise,
            eta=eta,
            bf16=bf16,
        )
        generated = decode_frames(self.ae, self.rollout(req, progress))
        return generated if batch is not None else generated[0]

    def rollout(self, req: GenerateRequest, progress: bool = False) -> torch.Tensor:
        """Level-0 latents [B, length, h, w, C] of a batch request (``rollout_latents`` without
        a saved state: nothing is written to disk)."""
        return rollout_latents(
            req, self.model, self.cfg, self.method, self.ae, device=self.device, progress=progress
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the video model (model.safetensors + config.json) and its autoencoder (``ae/``,
        the same two files) into the folder ``path``, atomically (written beside it, then
        renamed into place); weights as held (float32 after ``load``). An existing folder is
        replaced only when it is empty or a previous save; any other is refused."""
        path = Path(path)
        if path.exists() and not _previous_save(path):
            raise FileExistsError(
                f"{path}: exists and is not a saved pipeline (model.safetensors, config.json, "
                "ae/), saving would delete it: save into a new or empty folder"
            )
        tmp = fresh_tmp_folder(path)
        video_config = video_checkpoint_config(self.method, self.cfg, weights_digest(self.ae))
        _write_weights(tmp, self.model, video_config)
        _write_weights(tmp / AE_FOLDER, self.ae, self.ae_config)
        return swap_in_folder(tmp, path)


def _batch_inputs(
    context_frames: np.ndarray, actions: np.ndarray, poses: np.ndarray | None, size: int
) -> tuple[int | None, np.ndarray, np.ndarray, np.ndarray | None]:
    """(the batch size, or None for one video; context frames uint8 [B, T, size, size, 3],
    actions [B, T'], poses [B, T', 5] or None) of ``Pipeline.__call__``'s inputs."""
    context_frames = np.asarray(context_frames)
    if (
        context_frames.dtype != np.uint8
        or context_frames.ndim not in (4, 5)
        or context_frames.shape[-3:] != (size, size, 3)
    ):
        raise ValueError(
            f"context_frames: expected uint8 [T, {size}, {size}, 3] (or a batch "
            f"[B, T, {size}, {size}, 3]), got {context_frames.dtype} {context_frames.shape}"
        )
    batch = len(context_frames) if context_frames.ndim == 5 else None
    video = context_frames if batch is not None else context_frames[None]
    acts = _batched("actions", actions, "[T']", batch)
    pos = None if poses is None else _batched("poses", poses, "[T', 5]", batch)
    return batch, video, acts, pos


def _write_weights(folder: Path, module: torch.nn.Module, config: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(weights, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def load(
    path: str | os.PathLike,
    ae: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
) -> Pipeline:
    """The video model at ``path`` (a checkpoint folder such as checkpoints/mini/millivid, a
    ``millivid video train`` run, or a ``Pipeline.save`` folder) with its autoencoder, ready to
    generate on ``device`` (``auto``: cuda when there is one, else cpu).

    ``ae``: the autoencoder's folder; default: the first of ``path/ae``, ``path/../ae`` and,
    for a mini-preset model, the shipped checkpoints/mini/ae that holds a checkpoint.
    """
    path = Path(path)
    dev = str(resolve_device(device))
    model, cfg, method = load_video_model(path, dev)
    ae_path = Path(ae) if ae is not None else find_autoencoder(path, cfg)
    autoencoder = load_autoencoder(ae_path, dev)
    try:
        check_inputs(cfg, method, autoencoder, context=1, given=1)  # model/autoencoder fit
    except ValueError as err:
        raise ValueError(f"{ae_path} with {path}: {err}") from None
    check_autoencoder(path, ae_path, autoencoder)
    return Pipeline(model, cfg, method, autoencoder, dev, read_config(ae_path))
