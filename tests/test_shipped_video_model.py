"""The shipped mini video model (checkpoints/mini/millivid) loads and has learned to use its
context: on held-out world latents its v-loss is lower with the context than with every context
token dropped, and lower than the same network's at initialisation."""

import json
from dataclasses import asdict, replace
from pathlib import Path

import torch

from millivid.jobs.autoencoder import load_autoencoder
from millivid.jobs.video_task import InMemoryLatents, VideoBatch, VideoTask, build_video_model
from millivid.presets import PRESETS, REPRODUCE_PRESETS
from millivid.rollout.generate import load_video_model
from millivid.variants import variant_config
from millivid.world import TEST_SEED_OFFSET, make_videos

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_millivid_model_uses_its_context():
    model, cfg, method = load_video_model(ROOT / "checkpoints/mini/millivid", "cpu")
    assert (method, cfg.model.attention, cfg.model.condition) == ("millivid", "full", "both")
    assert cfg.model.pose_rope and cfg.plan.memory_frames == 4
    assert list(cfg.plan.memory_levels) == [0, 1, 2, 3]  # memory at each step's own level
    ae = load_autoencoder(ROOT / "checkpoints/mini/ae")
    world = replace(cfg.world, frames=320)
    videos = make_videos([TEST_SEED_OFFSET + 3, TEST_SEED_OFFSET + 4], world, test=True)
    with torch.no_grad():
        latents = [(ae.encode(videos.video[i]), videos.actions[i].long()) for i in range(2)]
    # the held-out loss of clean context (a model trained with noised coarse context is scored
    # on the context a teacher-forced rollout would give it)
    cfg = replace(
        cfg,
        video_train=replace(cfg.video_train, batch_size=8),
        diffusion=replace(cfg.diffusion, context_noise=0.0),
    )
    poses = [videos.poses[i] for i in range(2)]
    task = VideoTask(cfg, method, InMemoryLatents(latents, poses))
    batch = task.batch(0, torch.Generator().manual_seed(0))
    every = torch.ones_like(batch.dropped)
    no_context = VideoBatch(
        batch.tokens.drop_context(every), batch.t, batch.noise, every, batch.cin
    )
    torch.manual_seed(cfg.video_train.seed)
    untrained = build_video_model(cfg, method)
    with torch.no_grad():
        loss = float(task.loss(model, batch, "cpu")[0])
        blind = float(task.loss(model, no_context, "cpu")[0])
        initial = float(task.loss(untrained, batch, "cpu")[0])
    print(f"v-loss {loss:.3f}, context dropped {blind:.3f}, initial weights {initial:.3f}")
    assert loss < 0.75 * blind, (loss, blind)
    assert loss < 0.5 * initial, (loss, initial)


def test_reproduce_trains_the_shipped_models_recipe_by_default():
    """The first default variant of ``millivid reproduce`` (mini) is the shipped model's recipe:
    its model, plan and diffusion settings are the checkpoint's."""
    _, shipped, method = load_video_model(ROOT / "checkpoints/mini/millivid", "cpu")
    default = REPRODUCE_PRESETS["mini"].variants[0]
    variant_method, cfg = variant_config(PRESETS["mini"], default)
    assert variant_method == method
    for section in ("model", "plan", "diffusion"):
        ours, theirs = (json.loads(json.dumps(asdict(getattr(c, section)))) for c in (cfg, shipped))
        assert ours == theirs, section
