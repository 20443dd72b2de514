"""Renderer geometry: closed-form hits in hand-built worlds and agreement with brute force."""

import math
from dataclasses import replace

import pytest
import torch

from millivid.presets import PRESETS
from millivid.world.blocks import KIND
from millivid.world.render import FACE_BOTTOM, FACE_TOP, FACE_X, FAR, Renderer, march
from millivid.world.terrain import World, generate_worlds, pack, unpack

W = 64


def _world(**edits) -> World:
    """Flat grass at height 10, plus columns edited by {(x, y): dict(fields)}."""
    fields = {k: torch.zeros(W, W, dtype=torch.long) for k in ("ob", "sp", "ot", "k1", "k2")}
    fields["h"] = torch.full((W, W), 10)
    fields["surface"] = torch.full((W, W), KIND["grass"])
    for (x, y), values in edits.get("cols", {}).items():
        for key, value in values.items():
            fields[key][y, x] = value
    return World(pack(**fields).view(1, -1), W, torch.zeros(1, 3))


def _render_one(world, x, y, z, yaw, pitch):
    cfg = replace(PRESETS["tiny"].world, size=1, world_size=W)
    pose = torch.tensor([[x, y, z, yaw, pitch]])
    rgb, label, depth = Renderer(cfg).render(world, torch.zeros(1, dtype=torch.long), pose)
    return rgb[0, 0, 0], int(label[0, 0, 0]), float(depth[0, 0, 0])


def test_looking_straight_down_sees_grass_at_eye_height():
    _, label, depth = _render_one(_world(), 20.5, 20.5, 11.62, 0.0, -90.0)
    assert label == KIND["grass"]
    assert depth == pytest.approx(1.62, abs=2e-3)


def test_horizontal_ray_hits_a_wall_face_at_its_distance():
    wall = {(30, 20): dict(h=30, surface=KIND["stone"])}
    _, label, depth = _render_one(_world(cols=wall), 20.5, 20.5, 11.62, 0.0, 0.0)
    assert label == KIND["stone"]
    assert depth == pytest.approx(9.5, abs=1e-2)


def test_ray_under_a_canopy_hits_the_leaves_from_below():
    pitch = math.degrees(math.atan(0.38 / 3.0))  # crosses z=12 at x=23.5, inside column 23
    canopy = {(23, 20): dict(ob=12, sp=12, ot=14, k1=KIND["wood"], k2=KIND["leaves"])}
    world = _world(cols=canopy)
    _, label, depth = _render_one(world, 20.5, 20.5, 11.62, 0.0, pitch)
    assert label == KIND["leaves"]
    assert depth == pytest.approx(math.hypot(3.0, 0.38), abs=1e-2)
    d = torch.tensor([[math.cos(math.radians(pitch)), 0.0, math.sin(math.radians(pitch))]])
    _, face = march(
        world, torch.zeros(1, dtype=torch.long), torch.tensor([[20.5, 20.5, 11.62]]), d, 30
    )
    assert int(face[0]) == FACE_BOTTOM


def test_looking_up_into_empty_sky_hits_nothing():
    rgb, label, depth = _render_one(_world(), 20.5, 20.5, 11.62, 0.0, 30.0)
    assert label == 0 and depth == pytest.approx(PRESETS["tiny"].world.view_distance)
    assert rgb[2] > rgb[0]


def _brute_force(world: World, o, d, max_t, step=0.004):
    """First t where o + t d is inside a solid voxel, by dense sampling (FAR if none)."""
    t = torch.arange(step, max_t, step, dtype=torch.float64)
    p = o[:, None, :].double() + t[None, :, None] * d[:, None, :].double()  # [R, S, 3]
    r = o.shape[0]
    b = torch.zeros(r * t.numel(), dtype=torch.long)
    col = world.lookup(b, p[..., 0].floor().long().view(-1), p[..., 1].floor().long().view(-1))
    h, ob, ot = (unpack(col, k).view(r, -1).double() for k in ("h", "ob", "ot"))
    z = p[..., 2]
    solid = (z < h) | ((z >= ob) & (z < ot))
    first = torch.where(solid.any(1), solid.float().argmax(1), -1)
    return torch.where(first >= 0, t[first.clamp(min=0)], FAR)


def test_march_agrees_with_brute_force_sampling():
    cfg = replace(PRESETS["tiny"].world, world_size=64, tree_prob=0.9, landmark_cell=16)
    world = generate_worlds([5], cfg)
    world.columns = world.columns[:1]
    gen = torch.Generator().manual_seed(0)
    n = 300
    o = torch.rand(n, 3, generator=gen) * torch.tensor([64.0, 64.0, 0.0])
    ground = unpack(
        world.lookup(
            torch.zeros(n, dtype=torch.long), o[:, 0].floor().long(), o[:, 1].floor().long()
        ),
        "h",
    )
    o[:, 2] = ground.float() + 1.62  # cameras stand on the ground (possibly inside canopies: skip)
    d = torch.randn(n, 3, generator=gen)
    d[:, 2] = d[:, 2].abs() * -0.4  # mostly looking down and across
    d = d / d.norm(dim=1, keepdim=True)
    t, face = march(world, torch.zeros(n, dtype=torch.long), o, d, 24.0)
    ref = _brute_force(world, o, d, 24.0)
    outside = ref > 0.01  # drop cameras that were placed inside a trunk or pillar
    t, face, ref = t[outside], face[outside], ref[outside]
    assert outside.float().mean() > 0.8
    both = (t < FAR) & (ref < FAR)
    assert both.float().mean() > 0.8
    close = (t[both] - ref[both]).abs() < 0.01
    assert close.float().mean() > 0.99, (t[both][~close], ref[both][~close])
    assert ((t < FAR) == (ref < FAR)).float().mean() > 0.99
    assert set(face[t < FAR].tolist()) <= {FACE_TOP, FACE_BOTTOM, FACE_X, FACE_X + 1}
