"""``millivid generate``: context frames + actions -> the rest of the video, for every method.

Steps: encode the ground-truth context at every level with the autoencoder, walk the method's
plan with the DiT (``run_plan`` + ``DiTDenoiser``), decode the level-0 latents of the generated
frames, write OUT.npz (context + generated frames, actions), OUT.mp4 (ground truth beside the
generation when there is one) and OUT_plan.png. While it runs, the latent store is saved
(OUT.state.safetensors, atomically; ``rollout_latents``), so re-running the same request with
the same OUT resumes an interrupted rollout; another request is refused until that file is
deleted, and the file is removed once the outputs are written.

Actions past the ones given (the plan's last chunk may run past the end) repeat the last action.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from millivid.atomic import check_writable
from millivid.autoencoder.model import HierarchicalAutoencoder, to_frames
from millivid.data.videos import VideoRecord
from millivid.digest import arrays_digest, weights_digest
from millivid.jobs.video_task import build_video_model
from millivid.plan import context_source, generated_levels, make_plan
from millivid.plan.step import Span, Step
from millivid.presets import Config
from millivid.rollout.dit_denoiser import DiTDenoiser
from millivid.rollout.engine import Progress, first_nonfinite_step, run_plan
from millivid.rollout.request import (
    GenerateRequest,
    check_inputs,
    check_sampler,
    request_actions,
    request_poses,
)
from millivid.rollout.state import load_rollout_state, save_rollout_state
from millivid.rollout.store import LatentStore
from millivid.train import StepBoundaryStop, load_checkpoint, load_weights_into
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
    method = saved["method"]
    cfg = from_dict(Config, {k: v for k, v in saved.items() if k not in RECORD_KEYS}, str(run))
    model = build_video_model(cfg, method)
    load_weights_into(model, weights, str(run))
    return model.to(device).eval(), cfg, method


def load_ae(run: Path, device: str) -> HierarchicalAutoencoder:
    from millivid.jobs.autoencoder import load_autoencoder

    return load_autoencoder(run, device)


@dataclass
class Rollout:
    """A batch's rollout ready to run: its plan, an empty latent store (every level, every frame
    the plan touches), the actions int64 [B, T] and the denoiser."""

    plan: list[Step]
    store: LatentStore
    actions: torch.Tensor
    denoiser: DiTDenoiser


def prepare_rollout(
    req: GenerateRequest,
    model,
    cfg: Config,
    method: str,
    ae: HierarchicalAutoencoder,
    device: str = "cpu",
) -> Rollout:
    """Check a batch request (frames [B, T, H, W, 3], actions [B, T']) and set up its rollout;
    the context is not encoded yet (``write_context``)."""
    frames = np.asarray(req.frames)
    check_inputs(cfg, method, ae, req.context, frames.shape[1])
    plan = make_plan(method, cfg.plan, req.context, req.context + req.length)
    total = max(s.last_frame for s in plan)
    shapes = [ae.level_shape(lvl) for lvl in range(ae.cfg.levels)]
    store = LatentStore(
        shapes, batch=len(frames), frames=total, channels=ae.cfg.channels, device=device
    )
    actions = torch.cat([request_actions(req, a, total) for a in np.asarray(req.actions)]).to(
        device
    )
    poses = None
    if cfg.model.uses_poses:
        if req.poses is None:
            raise ValueError(
                f"this video model is conditioned on camera poses (model.condition = "
                f"{cfg.model.condition}): the input video needs its 'poses' array"
            )
        poses = torch.cat([request_poses(req, p, total) for p in np.asarray(req.poses)]).to(device)
    diffusion = cfg.diffusion
    if req.steps is not None:
        diffusion = replace(diffusion, sample_steps=req.steps)
    if req.guidance is not None:
        diffusion = replace(diffusion, guidance=req.guidance)
    check_sampler(diffusion)
    source = context_source(method)
    denoiser = DiTDenoiser(
        model, source, shapes, diffusion, req.reuse_context, req.compile, poses=poses
    )
    return Rollout(plan, store, actions, denoiser)


@torch.no_grad()
def write_context(store: LatentStore, ae: HierarchicalAutoencoder, frames: np.ndarray) -> None:
    """Encode context frames uint8 [B, T, H, W, 3] into frames 0..T of every level of ``store``."""
    batch, context = frames.shape[:2]
    flat = torch.from_numpy(frames).to(store.levels[0].device).flatten(0, 1)
    for lvl, z in enumerate(ae.encode(flat)):
        store.write(Span(lvl, 0, context), z.unflatten(0, (batch, context)))


def request_fingerprint(
    req: GenerateRequest,
    rollout: Rollout,
    model,
    ae: HierarchicalAutoencoder,
    method: str,
    cfg: Config,
) -> dict:
    """What a rollout's saved state belongs to (JSON-able): the weights, method, inputs and
    sampler settings that decide its latents; K/V reuse and compilation change only rounding."""
    diffusion = rollout.denoiser.diffusion
    poses = rollout.denoiser.poses
    return {
        "method": method,
        "model": weights_digest(model),
        "autoencoder": weights_digest(ae),
        "inputs": arrays_digest(
            np.asarray(req.frames)[:, : req.context],
            rollout.actions.cpu().numpy(),
            None if poses is None else poses.cpu().numpy(),
        ),
        "videos": len(req.frames),
        "context": req.context,
        "frames": req.length,
        "seed": req.seed,
        "ddim_steps": diffusion.sample_steps,
        "guidance": diffusion.guidance,
        "shift": diffusion.shift,
        "sample_context_noise": diffusion.sample_context_noise,
        "plan": to_dict(cfg.plan),
    }


def check_finite(plan: list[Step], store: LatentStore, context: int) -> None:
    """A ``ValueError`` naming the context or the first rollout step whose latents hold NaN or
    inf (decoded, they would be a black video)."""
    if not bool(torch.isfinite(store.levels[0][:, :context]).all()):
        raise ValueError(
            f"the autoencoder encoded the {context} context frames to non-finite latents "
            "(NaN/inf): check the autoencoder checkpoint (--ae)"
        )
    bad = first_nonfinite_step(plan, store)
    if bad is not None:
        t = plan[bad].target
        raise ValueError(
            f"rollout step {bad} of {len(plan)} (level {t.level}, frames {t.start}-{t.stop - 1}) "
            "produced non-finite latents (NaN/inf): check the video model (--ckpt) and --cfg"
        )


def rollout_latents(
    req: GenerateRequest,
    model,
    cfg: Config,
    method: str,
    ae: HierarchicalAutoencoder,
    state_path: Path | None = None,
    device: str = "cpu",
    desc: str = "",
    save_every_s: float = 60.0,
) -> torch.Tensor:
    """Level-0 latents [B, length, h, w, C] of the generated frames of a batch of videos.

    ``req.frames`` uint8 [B, T, H, W, 3] and ``req.actions`` int [B, T'] hold a batch here (one
    noise draw per rollout step for the whole batch). With ``state_path`` the latent store is
    saved atomically every ``save_every_s`` seconds and when the rollout is interrupted (Ctrl-C,
    SIGTERM, an error), and an existing state is resumed when it was made by the same request
    (``request_fingerprint``; another request is refused). (Saving after every step cost more
    than the sampling for big batches: the store of 64 mini videos is 356 MB.) Non-finite
    latents are an error (``check_finite``); the state is then removed, as resuming it cannot
    give a video.
    """
    rollout = prepare_rollout(req, model, cfg, method, ae, device)
    plan, store, batch = rollout.plan, rollout.store, len(req.frames)
    fingerprint = request_fingerprint(req, rollout, model, ae, method, cfg) if state_path else {}
    first = 0
    if state_path is not None and state_path.exists():
        state, first = load_rollout_state(state_path, fingerprint)
        store.load_state_dict(state)
    else:
        write_context(store, ae, np.asarray(req.frames)[:, : req.context])

    def save_state(i: int) -> None:
        if state_path is not None and i >= first:
            save_rollout_state(state_path, store, i + 1, fingerprint)

    bar = tqdm(total=len(plan), initial=first, desc=desc or f"generate {method}", unit="step")

    def progress(p: Progress) -> None:
        bar.update(1)
        text = f"{min(p.frames_per_level[0], req.length)}/{req.length} frames done"
        if p.step < len(plan):  # the step now running: full resolution or a coarser level
            level = plan[p.step].target.level
            text += f", now {'full res' if level == 0 else f'coarse level {level}'}"
        fps = batch * p.frames_per_level[0] / max(p.seconds, 1e-9)
        bar.set_postfix_str(f"{text}, {fps:.2f} fps")

    done, saved_at = first - 1, time.monotonic()  # last finished step, last save

    def after_step(i: int) -> None:
        nonlocal done, saved_at
        done = i
        if time.monotonic() - saved_at >= save_every_s:
            save_state(i)
            saved_at = time.monotonic()
        stop.check()  # `timeout`, Ctrl-C: stop after a whole step (the store stays consistent)

    try:
        with StepBoundaryStop() as stop:
            run_plan(
                plan,
                store,
                rollout.denoiser,
                rollout.actions,
                seed=req.seed,
                first_step=first,
                source=rollout.denoiser.source,
                poses=rollout.denoiser.poses,
                on_step=progress,
                after_step=after_step,
            )
    except BaseException:
        save_state(done)  # Ctrl-C, `timeout` or an error: keep the finished steps
        raise
    bar.close()
    try:
        check_finite(plan, store, req.context)
    except ValueError as err:
        if state_path is not None and state_path.exists():
            state_path.unlink()
            raise ValueError(f"{err} (removed the rollout state {state_path})") from None
        raise
    return store.levels[0][:, req.context : req.context + req.length]


@torch.no_grad()
def decode_frames(
    ae: HierarchicalAutoencoder, latents: torch.Tensor, chunk: int = 256
) -> np.ndarray:
    """uint8 [B, T, H, W, 3] of level-0 latents [B, T, h, w, C]; non-finite pixels (from a
    broken autoencoder) are an error, not black frames."""
    flat = latents.flatten(0, 1)
    out = []
    for i in range(0, len(flat), chunk):
        images = ae.decode_float(flat[i : i + chunk], 0)
        if not bool(torch.isfinite(images).all()):
            raise ValueError(
                "the autoencoder decoded finite latents to non-finite pixels (NaN/inf): check "
                "the autoencoder checkpoint (--ae)"
            )
        out.append(to_frames(images))
    return torch.cat(out).unflatten(0, latents.shape[:2]).cpu().numpy()


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
    latents = rollout_latents(batched, model, cfg, method, ae, state_path, device)
    plan = make_plan(method, cfg.plan, req.context, req.context + req.length)
    generated = decode_frames(ae, latents)[0]
    paths = _write_outputs(
        req, generated, method, cfg, out, plan, generated_levels(method, cfg.plan)
    )
    state_path.unlink(missing_ok=True)  # done: a re-run starts over
    return paths


@torch.no_grad()
def _write_outputs(req, generated, method, cfg, out, plan, levels) -> dict[str, Path]:
    """npz and its JSON first (the result), then the mp4 and the plan picture; without
    imageio-ffmpeg the mp4 is skipped with a warning rather than losing the rollout."""
    from millivid.atomic import write_json_atomic
    from millivid.data.mp4 import comparison_frames
    from millivid.data.videos import save_video, write_mp4
    from millivid.plan.draw import draw_plan

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
            "steps": len(plan),
            "levels_generated": list(levels),
            "seed": req.seed,
        },
    )
    truth = np.asarray(req.frames[:end]) if len(req.frames) >= end else None
    try:
        write_mp4(paths["mp4"], comparison_frames(video, req.context, method, truth))
    except ModuleNotFoundError as err:  # the npz holds the result; the mp4 is a view of it
        warnings.warn(f"{paths.pop('mp4')} not written: {err}", stacklevel=2)
    draw_plan(method, cfg.plan, req.context, end, plan, paths["plan"], max_steps=24)
    return paths
