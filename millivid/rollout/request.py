"""What ``millivid generate`` is asked to do, and the checks that run before any work: the
request (context frames, actions, camera poses, sampler settings), a rendered world video as
ground truth, and the errors for inputs, models and sampler settings that cannot give a video.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from millivid.autoencoder.model import HierarchicalAutoencoder
from millivid.data.videos import VideoRecord
from millivid.diffusion.config import DiffusionConfig
from millivid.model.tokens import NO_ACTION, check_context_noise_scope
from millivid.presets import Config
from millivid.world import make_videos


@dataclass
class GenerateRequest:
    """What to generate: frames uint8 [T,H,W,3] whose first ``context`` frames are given, actions
    int64 [T'] (0 forward, 1 left, 2 right, 3 none; T' >= context + frames; repeated past the
    end), camera poses float [T', 5] for pose-conditioned models (``model.condition``; else
    ignored), and sampler settings.
    ``rollout_latents`` takes a batch: frames [B,T,H,W,3], actions [B,T'], poses [B,T',5]."""

    frames: np.ndarray
    actions: np.ndarray
    context: int
    length: int  # frames to generate
    seed: int = 0
    poses: np.ndarray | None = None
    steps: int | None = None  # DDIM steps (default: the config's)
    guidance: float | None = None
    # noise level of the generated coarse context (default: the config's sample_context_noise)
    context_noise: float | None = None
    eta: float | None = None  # DDIM eta (default: the config's sample_eta; 0 = deterministic)
    reuse_context: bool | None = None
    compile: bool | None = None  # torch.compile the model (default: on CUDA)
    bf16: bool | None = None  # the model under bf16 autocast (default: on CUDA)


def world_video(cfg: Config, seed: int, context: int, frames: int) -> VideoRecord:
    """World ``seed`` rendered on CPU as ground truth (video, actions, poses, labels, depth;
    T = context + frames) with the test set's action law (paper A.1)."""
    world = replace(cfg.world, frames=context + frames, test_context_frames=context)
    v = make_videos([seed], world, "cpu", test=True)
    return VideoRecord(
        video=v.video[0].numpy(),
        actions=v.actions[0].numpy(),
        poses=v.poses[0].numpy(),
        labels=v.labels[0].numpy(),
        depth=v.depth[0].numpy(),
    )


def request_actions(req: GenerateRequest, acts: np.ndarray, frames: int) -> torch.Tensor:
    """int64 [1, frames] of one video's actions (checked; the last one repeated past the end)."""
    acts = np.asarray(acts)
    if acts.ndim != 1 or not np.issubdtype(acts.dtype, np.integer):
        raise ValueError(f"actions: expected int [T], got {acts.dtype} {acts.shape}")
    if len(acts) < req.context + req.length:
        raise ValueError(
            f"actions: {len(acts)} given, need at least context + frames = {req.context + req.length}"
        )
    if acts.min() < 0 or acts.max() > NO_ACTION:
        raise ValueError(
            f"actions: values must be 0 (forward), 1 (left), 2 (right) or {NO_ACTION} (none: "
            f"videos without actions, as millivid data import stores them), got "
            f"{acts.min()}..{acts.max()}"
        )
    out = np.concatenate([acts, np.full(max(0, frames - len(acts)), acts[-1])])[:frames]
    return torch.from_numpy(out.astype(np.int64))[None]


def request_poses(req: GenerateRequest, poses: np.ndarray, frames: int) -> torch.Tensor:
    """float32 [1, frames, 5] of one video's camera poses (checked). Past the end, where the
    last action is repeated, the camera keeps its last motion (``extrapolate_poses``)."""
    poses = np.asarray(poses, dtype=np.float32)
    if poses.ndim != 2 or poses.shape[1] != 5:
        raise ValueError(f"poses: expected float [T, 5] (x, y, z, yaw, pitch), got {poses.shape}")
    if len(poses) < req.context + req.length:
        raise ValueError(
            f"poses: {len(poses)} given, need at least context + frames = {req.context + req.length}"
        )
    if not np.isfinite(poses).all():
        raise ValueError("poses: non-finite values")
    return torch.from_numpy(extrapolate_poses(poses, frames))[None]


def extrapolate_poses(poses: np.ndarray, frames: int) -> np.ndarray:
    """float32 [frames, 5]: ``poses`` [T, 5], continued past T by repeating the last frame's motion
    (position and yaw change; pitch kept), so that the camera does what the repeated last action
    does: walk on, turn on, or stand where it is blocked. Standing still while the actions say
    walk is a video no model was trained on (the steps that run past the end condition on these
    poses, and memory frames are chosen by them)."""
    extra = max(0, frames - len(poses))
    step = poses[-1] - poses[-2] if len(poses) > 1 else np.zeros_like(poses[-1])
    step[3] = (step[3] + 180.0) % 360.0 - 180.0  # yaw across ±180
    step[4] = 0.0
    pad = poses[-1] + step * np.arange(1, extra + 1, dtype=np.float32)[:, None]
    return np.concatenate([poses, pad]).astype(np.float32)[:frames]


def check_inputs(
    cfg: Config, method: str, ae: HierarchicalAutoencoder, context: int, given: int
) -> None:
    """Errors for a video model / autoencoder / context mismatch, before any work is done."""
    if ae.cfg.channels != cfg.ae.channels or ae.cfg.levels != cfg.ae.levels:
        raise ValueError(
            f"autoencoder has {ae.cfg.levels} levels x {ae.cfg.channels} channels but the video "
            f"model expects {cfg.ae.levels} x {cfg.ae.channels}: use the autoencoder its latents came from"
        )
    if not 1 <= context <= given:
        raise ValueError(f"--context {context}: need 1 <= context <= {given} given frames")


# Far past any useful guidance scale (a few is usual); 1e30 gave all-black frames.
MAX_GUIDANCE = 100.0


def check_sampler(diffusion: DiffusionConfig) -> None:
    """Errors for sampler settings that cannot give a video (NaN guidance: all-black frames)."""
    if diffusion.sample_steps < 1:
        raise ValueError(
            f"--steps {diffusion.sample_steps}: DDIM steps per rollout step must be >= 1"
        )
    if not 0.0 <= diffusion.sample_context_noise <= 1.0:
        raise ValueError(
            f"diffusion.sample_context_noise = {diffusion.sample_context_noise}: a diffusion "
            "time in [0, 1] (0 = the generated coarse context as it is)"
        )
    check_context_noise_scope(diffusion.context_noise_scope)
    if not 0.0 <= diffusion.sample_eta <= 1.0:  # also refuses NaN
        raise ValueError(
            f"--eta {diffusion.sample_eta}: DDIM eta must be in [0, 1] (0 = deterministic, "
            "1 = DDPM ancestral steps)"
        )
    if not abs(diffusion.guidance) <= MAX_GUIDANCE:  # also refuses NaN
        raise ValueError(
            f"--cfg {diffusion.guidance}: the guidance scale must be a finite number within "
            f"±{MAX_GUIDANCE:g} (1 = off; a few is usual)"
        )
