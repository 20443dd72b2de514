"""Train the segmentation probe on ground-truth renders and record its held-out ceiling.

Trained with the project's one trainer (``millivid.train.train``) over a ``ProbeTask``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from millivid.device import resolve_device
from millivid.evaluate.probe import ProbeConfig, SegmentationProbe, load_probe, save_probe
from millivid.evaluate.probe_task import ProbeTask, probe_scores, render_probe_data
from millivid.nn import count_parameters
from millivid.train import TrainConfig, load_checkpoint, train
from millivid.world import TEST_SEED_OFFSET

if TYPE_CHECKING:
    from millivid.world.config import WorldConfig

HELD_OUT_VIDEOS = 4


def train_probe(
    out: Path,
    world: WorldConfig,
    world_preset: str,
    steps: int = 1500,
    videos: int = 24,
    frames: int = 256,
    batch_size: int = 32,
    lr: float = 3e-3,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    seed: int = 0,
    probe_cfg: ProbeConfig | None = None,
) -> dict:
    """Render training frames of ``world``, train, save ``out``/model.safetensors + config.json,
    and score the probe on held-out ground-truth test videos. Returns the recorded scores, which
    name the world by ``world_preset`` (e.g. ``load_preset("mini").world`` and "mini")."""
    out = Path(out)
    dev = resolve_device(device)
    t0 = time.time()
    data = render_probe_data(world, list(range(videos)), frames, stride=2)
    held = render_probe_data(
        world, [TEST_SEED_OFFSET + i for i in range(HELD_OUT_VIDEOS)], frames, stride=4
    )
    task = ProbeTask(data, probe_cfg or ProbeConfig(), batch_size)
    tcfg = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=max(1, steps // 20),
        checkpoint_every=max(1, steps // 4),
        seed=seed,
    )
    run = out / "run"  # trainer state for --resume; the shipped probe is out/model.safetensors
    config = {"probe": asdict(task.cfg)}
    train(task, tcfg, run, config=config, resume=resume, device=device, overwrite=overwrite)
    state, _ = load_checkpoint(run)
    model = SegmentationProbe(task.cfg)
    model.load_state_dict(state)
    trainer = "millivid.train"
    scores = probe_scores(model.to(dev), replace(held))
    report = {
        "world_preset": world_preset,
        "train_videos": videos,
        "train_frames": int(len(data.frames)),
        "steps": steps,
        "trainer": trainer,
        "held_out": {"videos": HELD_OUT_VIDEOS, "frames": int(len(held.frames)), **scores},
        "seconds": round(time.time() - t0, 1),
        "parameters": count_parameters(model),
    }
    save_probe(model.cpu(), out, {"report": report})
    load_probe(out)  # round-trip check
    return report
