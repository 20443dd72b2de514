"""A rollout of a batch of videos, ready to run and resumable (``millivid generate``, folder
rollouts and the Python API run it).

``prepare_rollout`` checks a request and sets up the plan, an empty latent store and the DiT
denoiser; ``write_context`` encodes the ground-truth context; a ``ResumableRollout`` walks the plan
(``run_plan``), saving the store as it goes and resuming a store saved by the same request;
``decode_frames`` turns the generated level-0 latents into frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from millivid.autoencoder.model import HierarchicalAutoencoder, to_frames
from millivid.digest import arrays_digest, weights_digest
from millivid.plan import context_source, make_plan
from millivid.plan.methods import get_method
from millivid.plan.step import Span, Step
from millivid.presets import Config
from millivid.rollout.dit_denoiser import DiTDenoiser
from millivid.rollout.engine import LATENT_LIMIT, Progress, first_diverged_step, run_plan
from millivid.rollout.request import (
    GenerateRequest,
    check_inputs,
    check_sampler,
    request_actions,
    request_poses,
)
from millivid.rollout.state import load_rollout_state, save_rollout_state
from millivid.rollout.store import LatentStore
from millivid.train import StepBoundaryStop
from millivid.typed_config import to_dict


@dataclass
class Rollout:
    """A batch's rollout ready to run: its plan, an empty latent store (every level, every frame
    the plan touches), the actions int64 [B, T], the denoiser and what each written target
    span implies for other levels (``run_plan``'s ``derive``; None: nothing)."""

    plan: list[Step]
    store: LatentStore
    actions: torch.Tensor
    denoiser: DiTDenoiser
    derive: Callable[[Span], None] | None = None


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
    if req.context_noise is not None:
        diffusion = replace(diffusion, sample_context_noise=req.context_noise)
    if req.eta is not None:
        diffusion = replace(diffusion, sample_eta=req.eta)
    check_sampler(diffusion)
    source = context_source(method)
    denoiser = DiTDenoiser(
        model, source, shapes, diffusion, req.reuse_context, req.compile, poses, req.bf16
    )
    derive = partial(reencode_levels, store, ae) if get_method(method).reencode else None
    return Rollout(plan, store, actions, denoiser, derive)


@torch.no_grad()
def reencode_levels(store: LatentStore, ae: HierarchicalAutoencoder, span: Span) -> None:
    """The coarser levels of the level-0 frames of ``span`` (a method that generates only level
    0 but reads hierarchical context): decoded to frames and encoded again, as a generated video
    would be; other spans are left alone."""
    if span.level != 0:
        return
    latents = store.read(span)  # [B, F, h, w, C]
    frames = ae.decode(latents.flatten(0, 1), 0)
    for level, z in enumerate(ae.encode(frames)):
        if level:
            store.write(Span(level, span.start, span.stop), z.unflatten(0, latents.shape[:2]))


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
    sampler settings that decide its latents; K/V reuse, compilation and bf16 change only
    rounding."""
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
        # only when not 1: states of earlier rollouts keep their record
        **({"level_shift": diffusion.level_shift} if diffusion.level_shift != 1 else {}),
        "sample_context_noise": diffusion.sample_context_noise,
        # only when stochastic: states of deterministic rollouts keep their record
        **({"sample_eta": diffusion.sample_eta} if diffusion.sample_eta else {}),
        "plan": to_dict(cfg.plan),
    }


def check_finite(plan: list[Step], store: LatentStore, context: int) -> None:
    """A ``ValueError`` naming the context or the first rollout step whose latents hold NaN, inf
    or values beyond ``LATENT_LIMIT`` (decoded, they would be a black or noise video)."""
    if not bool(torch.isfinite(store.levels[0][:, :context]).all()):
        raise ValueError(
            f"the autoencoder encoded the {context} context frames to non-finite latents "
            "(NaN/inf): check the autoencoder checkpoint (--ae)"
        )
    bad = first_diverged_step(plan, store)
    if bad is not None:
        t = plan[bad].target
        raise ValueError(
            f"rollout step {bad} of {len(plan)} (level {t.level}, frames {t.start}-{t.stop - 1}) "
            f"produced non-finite or exploded latents (NaN, inf or |value| > {LATENT_LIMIT:g}): "
            "check the video model (--ckpt) and --cfg"
        )


class ResumableRollout:
    """One batch rollout that keeps its work: the latent store is saved atomically to
    ``state_path`` every ``save_every_s`` seconds and when the rollout stops (Ctrl-C, SIGTERM,
    an error), and a saved store made by the same request (``request_fingerprint``) is resumed;
    another request's is refused. (Saving after every step cost more than the sampling for big
    batches: the store of 64 mini videos is 356 MB.) Without ``state_path`` nothing is saved."""

    def __init__(
        self,
        rollout: Rollout,
        req: GenerateRequest,
        fingerprint: dict,
        ae: HierarchicalAutoencoder,
        state_path: Path | None = None,
        save_every_s: float = 60.0,
    ) -> None:
        self.rollout, self.req, self.fingerprint = rollout, req, fingerprint
        self.state_path, self.save_every_s = state_path, save_every_s
        self.first = 0  # first step to run
        if state_path is not None and state_path.exists():
            state, self.first = load_rollout_state(state_path, fingerprint)
            rollout.store.load_state_dict(state)
        else:
            write_context(rollout.store, ae, np.asarray(req.frames)[:, : req.context])
        self.done = self.first - 1  # last finished step
        self.saved_at = time.monotonic()

    def save(self, step: int) -> None:
        """Save the store with steps up to ``step`` done (nothing new: nothing saved)."""
        if self.state_path is not None and step >= self.first:
            save_rollout_state(self.state_path, self.rollout.store, step + 1, self.fingerprint)

    def _after_step(self, step: int, stop: StepBoundaryStop) -> None:
        self.done = step
        if time.monotonic() - self.saved_at >= self.save_every_s:
            self.save(step)
            self.saved_at = time.monotonic()
        stop.check()  # `timeout`, Ctrl-C: stop after a whole step (the store stays consistent)

    def _progress_bar(self, desc: str, show: bool):
        """A tqdm bar (hidden unless ``show``) and the engine callback that updates it (frames
        done, level now running)."""
        plan, req, batch = self.rollout.plan, self.req, len(self.req.frames)
        bar = tqdm(total=len(plan), initial=self.first, desc=desc, unit="step", disable=not show)

        def progress(p: Progress) -> None:
            bar.update(1)
            text = f"{min(p.frames_per_level[0], req.length)}/{req.length} frames done"
            if p.step < len(plan):  # the step now running: full resolution or a coarser level
                level = plan[p.step].target.level
                text += f", now {'full res' if level == 0 else f'coarse level {level}'}"
            fps = batch * p.frames_per_level[0] / max(p.seconds, 1e-9)
            bar.set_postfix_str(f"{text}, {fps:.2f} fps", refresh=False)

        return bar, progress

    def run(self, desc: str, progress: bool = True) -> torch.Tensor:
        """Run the remaining steps; level-0 latents [B, length, h, w, C] of the generated
        frames (``progress``: show a progress bar). Non-finite latents are an error (``check_finite``); the state is then removed,
        as resuming it cannot give a video."""
        rollout, req = self.rollout, self.req
        bar, on_step = self._progress_bar(desc, progress)
        try:
            with StepBoundaryStop() as stop:
                run_plan(
                    rollout.plan,
                    rollout.store,
                    rollout.denoiser,
                    rollout.actions,
                    seed=req.seed,
                    first_step=self.first,
                    source=rollout.denoiser.source,
                    poses=rollout.denoiser.poses,
                    derive=rollout.derive,
                    on_step=on_step,
                    after_step=lambda step: self._after_step(step, stop),
                )
        except BaseException:
            self.save(self.done)  # Ctrl-C, `timeout` or an error: keep the finished steps
            raise
        bar.close()
        try:
            check_finite(rollout.plan, rollout.store, req.context)
        except ValueError as err:
            if self.state_path is not None and self.state_path.exists():
                self.state_path.unlink()
                raise ValueError(f"{err} (removed the rollout state {self.state_path})") from None
            raise
        return rollout.store.levels[0][:, req.context : req.context + req.length]


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
    progress: bool = True,
) -> torch.Tensor:
    """Level-0 latents [B, length, h, w, C] of the generated frames of a batch of videos:
    ``req.frames`` uint8 [B, T, H, W, 3] and ``req.actions`` int [B, T'] (one noise draw per
    rollout step for the whole batch), run as a ``ResumableRollout`` saving to ``state_path``
    (None: nothing is written to disk)."""
    rollout = prepare_rollout(req, model, cfg, method, ae, device)
    fingerprint = request_fingerprint(req, rollout, model, ae, method, cfg) if state_path else {}
    resumable = ResumableRollout(rollout, req, fingerprint, ae, state_path, save_every_s)
    return resumable.run(desc or f"generate {method}", progress)


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
