"""Train the segmentation probe on ground-truth renders and record its held-out ceiling.

Uses the project's trainer (``millivid.train.train``) when it is available; until then a plain
AdamW loop over the same ``ProbeTask`` (the probe is a 0.5 MB conv net, nothing else is needed).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from tqdm import tqdm

from millivid.evaluate.probe import ProbeConfig, SegmentationProbe, load_probe, save_probe
from millivid.evaluate.probe_task import ProbeTask, probe_scores, render_probe_data
from millivid.evaluate.suite import resolve_device

HELD_OUT_VIDEOS = 4


def _shared_trainer():
    try:
        from millivid.train import load_checkpoint, train  # type: ignore[attr-defined]
    except ImportError:
        return None
    return train, load_checkpoint


def _plain_train(task: ProbeTask, steps: int, lr: float, device: torch.device, seed: int):
    """AdamW with warmup + cosine decay over ``task``; returns the trained model."""
    torch.manual_seed(seed)
    model = task.build_model().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
        ),
    )
    gen = torch.Generator().manual_seed(seed)
    bar = tqdm(range(steps), desc="probe", unit="step")
    for step in bar:
        loss, logs = task.loss(model, task.batch(step, gen), device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{logs['acc']:.3f}")
    return model.eval()


def train_probe(
    out: Path,
    world_preset: str = "mini",
    steps: int = 1500,
    videos: int = 24,
    frames: int = 256,
    batch_size: int = 32,
    lr: float = 3e-3,
    device: str = "auto",
    resume: bool = False,
    seed: int = 0,
    probe_cfg: ProbeConfig | None = None,
) -> dict:
    """Render training frames, train, save ``out``/model.safetensors + config.json, and score the
    probe on held-out ground-truth test videos. Returns the recorded scores."""
    from millivid.world import PRESETS, TEST_SEED_OFFSET

    out = Path(out)
    dev = resolve_device(device)
    world = PRESETS[world_preset]
    t0 = time.time()
    data = render_probe_data(world, list(range(videos)), frames, stride=2)
    held = render_probe_data(
        world, [TEST_SEED_OFFSET + i for i in range(HELD_OUT_VIDEOS)], frames, stride=4
    )
    task = ProbeTask(data, probe_cfg or ProbeConfig(), batch_size)
    shared = _shared_trainer()
    if shared is not None:
        from millivid.train.config import TrainConfig

        train, load_checkpoint = shared
        tcfg = TrainConfig(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            warmup_steps=max(1, steps // 20),
            checkpoint_every=max(1, steps // 4),
            seed=seed,
        )
        train(
            task,
            tcfg,
            out / "train",
            config={"probe": asdict(task.cfg)},
            resume=resume,
            device=device,
        )
        state, _ = load_checkpoint(out / "train")
        model = SegmentationProbe(task.cfg)
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        trainer = "millivid.train"
    else:
        model = _plain_train(task, steps, lr, dev, seed)
        trainer = "plain AdamW loop (millivid.train not available)"
    scores = probe_scores(model.to(dev), replace(held))
    report = {
        "world_preset": world_preset,
        "train_videos": videos,
        "train_frames": int(len(data.frames)),
        "steps": steps,
        "trainer": trainer,
        "held_out": {"videos": HELD_OUT_VIDEOS, "frames": int(len(held.frames)), **scores},
        "seconds": round(time.time() - t0, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    save_probe(model.cpu(), out, {"report": report})
    load_probe(out)  # round-trip check
    return report
