"""Roll out every video of a folder in batches (test sets): ``rollout_folder``.

Each ground-truth ``<name>.npz`` (keys ``video``, ``actions``) gets ``OUT/<name>.npz`` with the
context frames followed by the generated ones (the layout ``millivid evaluate --pred-dir`` and
``millivid report`` read). Finished files are skipped, and the batch in progress saves its latent
store as it goes (``OUT/.batch-<first name>.state.safetensors``), so an interrupted run resumes
where it stopped; a state saved by another request (model, steps, guidance, seed, context,
frames) is refused until it is deleted (``millivid.rollout.state``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from millivid.data.videos import VideoRecord, load_video, save_video
from millivid.rollout.request import GenerateRequest
from millivid.rollout.resumable import decode_frames, rollout_latents


def rollout_folder(
    gt_dir: Path,
    out_dir: Path,
    model,
    cfg,
    method: str,
    ae,
    *,
    context: int,
    length: int,
    batch: int = 16,
    steps: int | None = None,
    guidance: float | None = None,
    context_noise: float | None = None,
    eta: float | None = None,
    reuse_context: bool | None = None,
    compile: bool | None = None,
    seed: int = 0,
    device: str = "cpu",
    max_videos: int | None = None,
) -> list[Path]:
    """Generate ``length`` frames after ``context`` for every video of ``gt_dir``; returns the
    output paths (existing ones included). ``compile``: see ``GenerateRequest``."""
    gt_files = sorted(Path(gt_dir).glob("*.npz"))[:max_videos]
    if not gt_files:
        raise FileNotFoundError(f"{gt_dir}: no .npz videos to roll out")
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [p for p in gt_files if not (out_dir / p.name).exists()]
    for i in range(0, len(todo), batch):
        group = todo[i : i + batch]
        first = gt_files.index(group[0])  # the noise seed: the same when a re-run skips batches
        records = _load_group(group, cfg.model.uses_poses, context + length)
        req = GenerateRequest(
            frames=np.stack([r.video[:context] for r in records]),
            actions=np.stack([r.actions[: context + length] for r in records]),
            poses=np.stack([r.poses[: context + length] for r in records])
            if cfg.model.uses_poses
            else None,
            context=context,
            length=length,
            seed=seed + first,
            steps=steps,
            guidance=guidance,
            context_noise=context_noise,
            eta=eta,
            reuse_context=reuse_context,
            compile=compile,
        )
        state = out_dir / f".batch-{group[0].stem}.state.safetensors"
        desc = f"{method} videos {i + 1}-{i + len(group)}/{len(todo)}"
        latents = rollout_latents(req, model, cfg, method, ae, state, device, desc)
        _write_group(out_dir, group, records, decode_frames(ae, latents), context, length)
        state.unlink(missing_ok=True)
    return [out_dir / p.name for p in gt_files]


def _load_group(group: list[Path], poses: bool, needed: int) -> list[VideoRecord]:
    """The ground-truth videos of a batch, each with at least ``needed`` actions."""
    keys = ("video", "actions", "poses") if poses else ("video", "actions")
    records = [load_video(p, keys=keys) for p in group]
    for path, rec in zip(group, records):
        if len(rec.actions) < needed:
            raise ValueError(
                f"{path}: {len(rec.actions)} actions, need context + frames = {needed}"
            )
    return records


def _write_group(
    out_dir: Path,
    group: list[Path],
    records: list[VideoRecord],
    generated: np.ndarray,
    context: int,
    length: int,
) -> None:
    """``OUT/<name>.npz`` of each video of a batch: its context frames, then the generated ones
    (uint8 [B, length, H, W, 3]), with the actions of those frames."""
    for path, rec, gen in zip(group, records, generated):
        video = np.concatenate([rec.video[:context], gen])
        actions = rec.actions[: context + length].astype(np.int64)
        save_video(out_dir / path.name, VideoRecord(video=video, actions=actions))
