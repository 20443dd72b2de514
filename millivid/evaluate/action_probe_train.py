"""Train the action probe on ground-truth renders and record its held-out accuracy.

Trained with the project's one trainer (``millivid.train.train``) over an ``ActionProbeTask``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from millivid.device import resolve_device
from millivid.evaluate.action_probe import (
    ActionProbe,
    ActionProbeConfig,
    load_action_probe,
    save_action_probe,
)
from millivid.evaluate.action_probe_task import (
    ActionProbeTask,
    action_scores,
    blurred,
    render_action_data,
)
from millivid.nn import count_parameters
from millivid.train import TrainConfig, load_checkpoint, train
from millivid.world import TEST_SEED_OFFSET

if TYPE_CHECKING:
    from millivid.world.config import WorldConfig

HELD_OUT_VIDEOS = 48


def train_action_probe(
    out: Path,
    world: WorldConfig,
    world_preset: str,
    steps: int = 1000,
    videos: int = 96,
    frames: int = 256,
    batch_size: int = 64,
    lr: float = 3e-3,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    seed: int = 0,
    probe_cfg: ActionProbeConfig | None = None,
    held_out_videos: int = HELD_OUT_VIDEOS,
) -> dict:
    """Render training videos of ``world``, train, save ``out``/model.safetensors + config.json,
    and score the probe on held-out ground-truth test-seed videos. Returns the recorded report,
    which names the world by ``world_preset`` (e.g. ``load_preset("mini").world`` and "mini")."""
    out = Path(out)
    dev = resolve_device(device)
    t0 = time.time()
    data = render_action_data(world, list(range(videos)), frames)
    held = render_action_data(world, [TEST_SEED_OFFSET + i for i in range(held_out_videos)], frames)
    task = ActionProbeTask(data, probe_cfg or ActionProbeConfig(), batch_size)
    tcfg = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=max(1, steps // 20),
        cooldown=0.3,
        checkpoint_every=max(1, steps // 4),
        seed=seed,
    )
    run = out / "run"  # trainer state for --resume; the shipped probe is out/model.safetensors
    config = {"action_probe": asdict(task.cfg), "world_preset": world_preset}
    train(task, tcfg, run, config=config, resume=resume, device=device, overwrite=overwrite)
    model = ActionProbe(task.cfg)
    model.load_state_dict(load_checkpoint(run)[0])
    report = {
        "world_preset": world_preset,
        "train_videos": videos,
        "frames_per_video": frames,
        "train_pairs": int(len(task.forward_idx) + len(task.turn_idx)),
        "steps": steps,
        "batch_size": batch_size,
        "trainer": "millivid.train",
        "held_out": {
            "videos": held_out_videos,
            "seeds": f"TEST_SEED_OFFSET + 0..{held_out_videos - 1}",
            **action_scores(model.to(dev), held),
        },
        "held_out_blurred": action_scores(model, blurred(held)),
        "seconds": round(time.time() - t0, 1),
        "parameters": count_parameters(model),
    }
    save_action_probe(model.cpu(), out, {"report": report})
    load_action_probe(out)  # round-trip check
    return report
