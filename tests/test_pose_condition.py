"""Pose conditioning (``model.condition = poses | both``): relative poses, packing, the model,
the latent cache and the rollout's checks."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.autoencoder.model import HierarchicalAutoencoder
from millivid.cli import main
from millivid.data.latent_cache import LatentCache, write_cache_meta, write_latent_video
from millivid.jobs.video_task import InMemoryLatents, VideoTask, build_video_model
from millivid.model.packing import pack, relative_poses
from millivid.plan import sample_training_step
from millivid.presets import load_preset
from millivid.train import write_checkpoint
from millivid.typed_config import to_dict

SHAPES = [(4, 4), (2, 2), (1, 1)]


def walk(frames=64, seed=0):
    """A random camera track float32 [1, T, 5]: forward steps and 15° turns, like the world."""
    gen = torch.Generator().manual_seed(seed)
    turn = torch.randint(-1, 2, (frames,), generator=gen).double() * 15.0
    yaw = 30.0 + turn.cumsum(0)
    step = (turn == 0).double() * 0.25
    x = (step * torch.deg2rad(yaw).cos()).cumsum(0)
    y = (step * torch.deg2rad(yaw).sin()).cumsum(0)
    z = torch.full_like(x, 13.6)
    return torch.stack([x, y, z, yaw, torch.full_like(x, -10.0)], -1).float()[None]


def test_relative_poses_known_case():
    # the camera at the origin frame looks along +y (yaw 90); the next frame is 1 block further
    # along +y and has turned 15° left; the one before was 2 blocks to the camera's right (+x)
    poses = torch.tensor([[[2, 0, 0, 90, 0], [0, 0, 0, 90, 0], [0, 1, 0, 105, 0]]]).float()
    rel = relative_poses(poses, origin=1)
    expected = [[0, -2, 0], [0, 0, 0], [1, 0, math.radians(15)]]
    assert torch.allclose(rel[0], torch.tensor(expected).float(), atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    dx=st.floats(-300, 300),
    dy=st.floats(-300, 300),
    turn=st.floats(-720, 720),
    origin=st.integers(0, 63),
)
def test_relative_poses_ignore_where_and_how_the_track_is_placed(dx, dy, turn, origin):
    """Moving and turning the whole track changes nothing: the model sees the camera relative
    to the target's first frame, not the world's origin."""
    poses = walk(seed=origin).double()
    c, s = math.cos(math.radians(turn)), math.sin(math.radians(turn))
    moved = poses.clone()
    moved[..., 0] = c * poses[..., 0] - s * poses[..., 1] + dx
    moved[..., 1] = s * poses[..., 0] + c * poses[..., 1] + dy
    moved[..., 3] = poses[..., 3] + turn
    a, b = relative_poses(poses, origin), relative_poses(moved, origin)
    assert torch.allclose(a, b, atol=2e-3)
    assert torch.allclose(a[0, origin], torch.zeros(3), atol=1e-6)


def latents(videos=2, frames=64, channels=4):
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(videos):
        levels = [torch.randn(frames, h, w, channels, generator=gen) for h, w in SHAPES]
        out.append((levels, torch.randint(0, 3, (frames,), generator=gen)))
    return out


def test_pack_puts_each_tokens_relative_pose_and_zeros_without_poses():
    cfg = load_preset("tiny")
    (levels, actions), poses = latents(1)[0], walk()
    import random

    step = sample_training_step("millivid", cfg.plan, 64, random.Random(3))
    lv = [lat[None] for lat in levels]
    tokens = pack(lv, actions[None], step, "levels", poses=poses)
    rel = relative_poses(poses, step.target.start)
    valid = tokens.valid[0]
    assert torch.equal(tokens.pose[0][valid], rel[0, tokens.frame[0][valid]])
    assert not tokens.pose[0][~valid].any()  # padding
    assert not pack(lv, actions[None], step, "levels").pose.any()
    with pytest.raises(ValueError, match="poses: expected float"):
        pack(lv, actions[None], step, "levels", poses=poses[:, :10])


def test_model_sees_poses_only_when_conditioned_on_them():
    import random

    (levels, actions), poses = latents(1)[0], walk()
    lv = [lat[None] for lat in levels]
    for condition, depends in (("actions", False), ("poses", True), ("both", True)):
        cfg = load_preset("tiny", [f"model.condition={condition}"])
        torch.manual_seed(0)
        model = build_video_model(cfg, "millivid")
        with torch.no_grad():  # off adaLN-Zero's zero init
            for p in model.parameters():
                if not p.any():
                    p.normal_(0, 0.02)
        step = sample_training_step("millivid", cfg.plan, 64, random.Random(5))
        t = torch.full((1,), 0.5)
        a = model(pack(lv, actions[None], step, "levels", poses=poses), t)
        turned = poses.clone()
        turned[..., 3] += torch.linspace(0, 90, 64)  # another camera track, same actions
        b = model(pack(lv, actions[None], step, "levels", poses=turned), t)
        assert (not torch.allclose(a, b)) == depends, condition
        assert (model.action_embed is not None) == (condition != "poses")


def test_pose_conditioned_training_needs_poses_and_uses_them():
    cfg = load_preset("tiny", ["model.condition=both", "video_train.batch_size=4"])
    with pytest.raises(ValueError, match="no poses"):
        VideoTask(cfg, "millivid", InMemoryLatents(latents())).batch(0, torch.Generator())
    source = InMemoryLatents(latents(), poses=[walk(seed=i)[0] for i in range(2)])
    task = VideoTask(cfg, "millivid", source)
    batch = task.batch(0, torch.Generator().manual_seed(0))
    assert batch.tokens.pose.abs().sum() > 0
    model = task.build_model()
    with torch.no_grad():  # off adaLN-Zero's zero init, so gradients reach the embeddings
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.02)
    loss, _ = task.loss(model, batch, "cpu")
    loss.backward()
    assert model.pose_embed.mlp[0].weight.grad.abs().sum() > 0


def test_latent_cache_keeps_poses_and_names_the_file_without_them(tmp_path):
    (levels, actions), poses = latents(1)[0], walk()[0]
    write_cache_meta(tmp_path, {"levels": 3, "channels": 4, "tokens_per_frame": [16, 4, 1]})
    write_latent_video(tmp_path / "000000.safetensors", levels, actions, poses)
    write_latent_video(tmp_path / "000001.safetensors", levels, actions)
    cache = LatentCache(tmp_path)
    assert torch.equal(cache.load_poses(0), poses)
    with pytest.raises(ValueError, match="000001.safetensors: no 'poses'"):
        cache.load_poses(1)


@pytest.mark.parametrize("memory", ["0", "2"])  # also a model with memory frames by pose
def test_generate_with_a_pose_model_uses_the_videos_poses(tmp_path, capsys, memory):
    cfg = load_preset("tiny", ["model.condition=both", f"plan.memory_frames={memory}"])
    write_checkpoint(
        tmp_path / "ae",
        HierarchicalAutoencoder(cfg.ae).state_dict(),
        {"stage": "autoencoder", **to_dict(cfg)},
    )
    model = build_video_model(cfg, "millivid")
    saved = {"stage": "video", "method": "millivid", **to_dict(cfg)}
    write_checkpoint(tmp_path / "video", model.state_dict(), saved)
    args = ["generate", "--ckpt", str(tmp_path / "video"), "--ae", str(tmp_path / "ae")]
    args += ["--context", "24", "--frames", "8", "--steps", "1"]
    assert main([*args, "--seed", "3", "--out", str(tmp_path / "g")]) == 0  # rendered: poses
    with np.load(tmp_path / "g.npz") as f:
        np.savez(tmp_path / "noposes.npz", video=f["video"], actions=f["actions"])
    assert main([*args, "--video", str(tmp_path / "noposes.npz"), "--out", str(tmp_path / "h")])
    assert "poses" in capsys.readouterr().err


@settings(max_examples=30, deadline=None)
@given(
    shift=st.lists(st.floats(-50, 50), min_size=3, max_size=3),
    seed=st.integers(0, 1000),
)
def test_pose_rotations_make_scores_depend_on_pose_differences_only(shift, seed):
    from millivid.model.embed import POSE_ROPE_DIMS, pose_angles, rotate

    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 1, 1, 5, 40, generator=gen).double()
    pq, pk = torch.randn(2, 1, 5, 3, generator=gen).double() * 20
    c = torch.tensor(shift).double()

    def scores(a, b):
        return rotate(q, pose_angles(a).double()) @ rotate(k, pose_angles(b).double()).mT

    assert torch.allclose(scores(pq, pk), scores(pq + c, pk + c), atol=1e-3)
    assert torch.equal(rotate(q, pose_angles(pq))[..., POSE_ROPE_DIMS:], q[..., POSE_ROPE_DIMS:])


def test_pose_rope_model_attends_by_pose_difference():
    """With the additive pose embedding made constant, a pose-rope model's output moves when one
    frame's pose changes and stays put when every token's pose moves by the same amount."""
    import random

    (levels, actions), poses = latents(1)[0], walk()
    lv = [lat[None] for lat in levels]
    cfg = load_preset("tiny", ["model.condition=poses", "model.pose_rope=true"])
    torch.manual_seed(0)
    model = build_video_model(cfg, "millivid")
    with torch.no_grad():  # off adaLN-Zero's zero init; the additive pose path constant
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.02)
        model.pose_embed.mlp[2].weight.zero_()
    step = sample_training_step("millivid", cfg.plan, 64, random.Random(5))
    tokens = pack(lv, actions[None], step, "levels", poses=poses)
    t = torch.full((1,), 0.5)
    out = model(tokens, t)
    moved = tokens.pose + torch.tensor([3.0, -7.0, 0.4])
    torch.testing.assert_close(model(replace(tokens, pose=moved), t), out, rtol=1e-4, atol=1e-5)
    one = tokens.pose.clone()
    one[tokens.frame == tokens.frame[0, 0]] += torch.tensor([2.0, 1.0, 0.3])
    assert not torch.allclose(model(replace(tokens, pose=one), t), out, atol=1e-5)


def test_pose_rope_needs_poses_and_wide_enough_heads():
    with pytest.raises(ValueError, match="model.pose_rope needs poses"):
        build_video_model(load_preset("tiny", ["model.pose_rope=true"]), "millivid")
    cfg = load_preset("tiny", ["model.condition=both", "model.pose_rope=true", "model.heads=4"])
    with pytest.raises(ValueError, match="rotates 32 dims of every head"):
        build_video_model(cfg, "millivid")


def test_pose_rope_context_cache_equals_the_joint_path():
    import random

    (levels, actions), poses = latents(1)[0], walk()
    lv = [lat[None] for lat in levels]
    cfg = load_preset(
        "tiny", ["model.condition=both", "model.pose_rope=true", "model.attention=context-causal"]
    )
    torch.manual_seed(0)
    model = build_video_model(cfg, "millivid").eval()
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.02)
    step = sample_training_step("millivid", cfg.plan, 64, random.Random(7))
    tokens = pack(lv, actions[None], step, "levels", poses=poses)
    t = torch.full((1,), 0.7)
    with torch.no_grad():
        joint = model(tokens, t)
        fast = model.forward_targets(tokens, t, model.encode_context(tokens))
    torch.testing.assert_close(fast, joint, rtol=1e-4, atol=1e-5)
