"""``millivid generate``: context frames + actions -> the rest of the video, for every method.

Steps: encode the ground-truth context at every level with the autoencoder, walk the method's
plan with the DiT (``run_plan`` + ``DiTDenoiser``), decode the level-0 latents of the generated
frames, write OUT.npz (context + generated frames, actions), OUT.mp4 (ground truth beside the
generation when there is one) and OUT_plan.png. While it runs, the latent store is saved
(OUT.state.safetensors, atomically; ``millivid.rollout.resumable``), so re-running the same request with
the same OUT resumes an interrupted rollout; another request is refused until that file is
deleted, and the file is removed once the outputs are written.

Actions past the ones given (the plan's last chunk may run past the end) repeat the last action.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from millivid.atomic import check_writable, write_json_atomic
from millivid.autoencoder.model import HierarchicalAutoencoder
from millivid.data.mp4 import comparison_frames
from millivid.data.videos import VideoRecord, save_video, write_mp4
from millivid.jobs.video_task import build_video_model
from millivid.plan import generated_levels
from millivid.plan.draw import draw_plan
from millivid.presets import Config
from millivid.rollout.request import GenerateRequest
from millivid.rollout.resumable import (
    ResumableRollout,
    decode_frames,
    prepare_rollout,
    request_fingerprint,
)
from millivid.train import load_checkpoint, load_weights_into
from millivid.train.checkpoint import trained_step
from millivid.typed_config import from_dict, to_dict

# what a video checkpoint's config.json records beside the Config
RECORD_KEYS = ("stage", "method", "autoencoder_digest")


def video_checkpoint_config(method: str, cfg: Config, autoencoder_digest: str | None) -> dict:
    """The config.json of a video checkpoint: the ``RECORD_KEYS`` (the autoencoder digest names
    the autoencoder whose latents trained it; None when unknown) and the whole Config."""
    return {
        "stage": "video",
        "method": method,
        "autoencoder_digest": autoencoder_digest,
        **to_dict(cfg),
    }


def load_video_model(run: Path, device: str) -> tuple[torch.nn.Module, Config, str]:
    """(model, config, method) of a ``millivid video train`` run or checkpoint folder."""
    weights, saved = load_checkpoint(run, ema=True)
    if saved.get("stage") != "video":
        raise ValueError(f"{run}: not a video-model checkpoint (stage={saved.get('stage')!r})")
    trained_step(run)  # a step-0 checkpoint is refused
    method = saved["method"]
    cfg = from_dict(Config, {k: v for k, v in saved.items() if k not in RECORD_KEYS}, str(run))
    model = build_video_model(cfg, method)
    load_weights_into(model, weights, str(run))
    return model.to(device).eval(), cfg, method


OUTPUT_SUFFIXES = (".npz", ".json", ".mp4", "_plan.png", ".state.safetensors")


def generate(
    req: GenerateRequest,
    model,
    cfg: Config,
    method: str,
    ae: HierarchicalAutoencoder,
    out: Path,
    device: str = "cpu",
    method_check: str | None = None,
) -> dict[str, Path]:
    """Generate one video, write the outputs and return their paths (see the module docstring)."""
    if method_check and method_check != method:
        raise ValueError(f"--method {method_check} but the checkpoint was trained for {method!r}")
    check_writable(*(out.with_name(out.name + s) for s in OUTPUT_SUFFIXES))  # before the work
    batched = replace(
        req,
        frames=np.asarray(req.frames)[None],
        actions=np.asarray(req.actions)[None],
        poses=None if req.poses is None else np.asarray(req.poses)[None],
    )
    state_path = out.with_name(out.name + ".state.safetensors")
    rollout = prepare_rollout(batched, model, cfg, method, ae, device)
    fingerprint = request_fingerprint(batched, rollout, model, ae, method, cfg)
    resumable = ResumableRollout(rollout, batched, fingerprint, ae, state_path)
    generated = decode_frames(ae, resumable.run(f"generate {method}"))[0]
    levels = generated_levels(method, cfg.plan)
    paths = _write_outputs(req, generated, method, cfg, out, rollout, levels)
    state_path.unlink(missing_ok=True)  # done: a re-run starts over
    return paths


@torch.no_grad()
def _write_outputs(req, generated, method, cfg, out, rollout, levels) -> dict[str, Path]:
    """npz and its JSON first (the result, with the rollout's sampler settings), then the mp4
    and the plan picture; without imageio-ffmpeg the mp4 is skipped with a warning rather than
    losing the rollout."""
    plan, diffusion = rollout.plan, rollout.denoiser.diffusion
    end = req.context + req.length
    video = np.concatenate([req.frames[: req.context], generated])
    paths = {
        "npz": out.with_name(out.name + ".npz"),
        "mp4": out.with_name(out.name + ".mp4"),
        "plan": out.with_name(out.name + "_plan.png"),
    }
    save_video(
        paths["npz"],
        VideoRecord(video=video, actions=np.asarray(req.actions[:end], dtype=np.int64)),
    )
    write_json_atomic(
        out.with_name(out.name + ".json"),
        {
            "method": method,
            "context": req.context,
            "frames": req.length,
            "steps": len(plan),  # rollout steps of the plan (as rollout_steps)
            "rollout_steps": len(plan),
            "levels_generated": list(levels),
            "seed": req.seed,
            "ddim_steps": diffusion.sample_steps,
            "guidance": diffusion.guidance,
            "sample_eta": diffusion.sample_eta,
            "sample_context_noise": diffusion.sample_context_noise,
        },
    )
    truth = np.asarray(req.frames[:end]) if len(req.frames) >= end else None
    try:
        write_mp4(paths["mp4"], comparison_frames(video, req.context, method, truth))
    except ModuleNotFoundError as err:  # the npz holds the result; the mp4 is a view of it
        warnings.warn(f"{paths.pop('mp4')} not written: {err}", stacklevel=2)
    draw_plan(method, cfg.plan, req.context, end, plan, paths["plan"], max_steps=24)
    return paths
