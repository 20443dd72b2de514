"""The LOOPCRAFT agent law: action sequences, flat-plane trajectories and in-world simulation.

Actions are sampled first, from the seed alone (see ``WorldConfig`` for the law); the world
only decides whether a forward step is blocked. So the flat-plane trajectory of a sequence
(paper A.1) is a pure function of the actions, and ``action[t]`` is the action that moved the
agent from pose ``t - 1`` to pose ``t`` (``action[0]`` acts on the start pose).
"""

from __future__ import annotations

import random

import torch

from millivid.world.config import WorldConfig
from millivid.world.terrain import World, unpack

FORWARD, LEFT, RIGHT = 0, 1, 2


def sample_actions(rng: random.Random, cfg: WorldConfig) -> list[int]:
    """One action sequence of ``cfg.frames`` actions drawn from the LOOPCRAFT law."""
    if cfg.group_gap_min < 1 or cfg.run_min < 1:
        raise ValueError("world.group_gap_min and world.run_min must be >= 1 (turns would merge)")
    actions: list[int] = []
    while len(actions) < cfg.frames:
        actions += [FORWARD] * rng.randint(cfg.run_min, cfg.run_max)
        group = rng.choices(cfg.turn_group_sizes, weights=cfg.turn_group_probs)[0]
        direction = rng.choice((LEFT, RIGHT))
        for i in range(group):
            if i:
                actions += [FORWARD] * rng.randint(cfg.group_gap_min, cfg.group_gap_max)
            actions += [direction] * cfg.turn_frames
    return actions[: cfg.frames]


def yaw_steps(actions: torch.Tensor, cfg: WorldConfig) -> torch.Tensor:
    """Per-frame yaw change in degrees, float64 [..., T] (left +, right -)."""
    per = 90.0 / cfg.turn_frames
    return (actions == LEFT).double() * per - (actions == RIGHT).double() * per


def flat_trajectory(actions: torch.Tensor, start_yaw: torch.Tensor, cfg: WorldConfig):
    """XY path on a flat plane without collisions: actions int [B, T] -> float64 [B, T, 2].

    Starts at the origin with yaw ``start_yaw`` (degrees, [B]).
    """
    yaw = start_yaw.double()[:, None] + yaw_steps(actions, cfg).cumsum(-1)
    step = (actions == FORWARD).double() * cfg.speed
    rad = torch.deg2rad(yaw)
    return torch.stack([(step * rad.cos()).cumsum(-1), (step * rad.sin()).cumsum(-1)], -1)


def simulate(world: World, actions: torch.Tensor, cfg: WorldConfig):
    """Run the agent through its worlds. actions int64 [B, T] (on the world's device).

    Returns (poses float32 [B, T, 5] = x, y, z (eye), yaw°, pitch°; blocked bool [B, T]: a
    forward action that did not move because the column ahead was 2+ blocks higher or held a
    trunk/landmark). Yaw is unwrapped (cumulative degrees).
    """
    bsz, frames = actions.shape
    dev = actions.device
    b = torch.arange(bsz, device=dev)
    x, y = world.start[:, 0].double(), world.start[:, 1].double()
    yaw_all = world.start[:, 2].double()[:, None] + yaw_steps(actions, cfg).cumsum(-1)
    feet = _ground(world, b, x, y)
    eye = feet + cfg.eye_height
    poses = torch.empty(bsz, frames, 5, dtype=torch.float64, device=dev)
    blocked = torch.zeros(bsz, frames, dtype=torch.bool, device=dev)
    cos, sin = torch.deg2rad(yaw_all).cos(), torch.deg2rad(yaw_all).sin()
    for t in range(frames):
        fwd = actions[:, t] == FORWARD
        nx, ny = x + cfg.speed * cos[:, t], y + cfg.speed * sin[:, t]
        reach = cfg.speed + cfg.agent_radius
        px, py = x + reach * cos[:, t], y + reach * sin[:, t]
        stop = fwd & (
            _obstacle(world, b, px, py, feet, cfg) | _obstacle(world, b, nx, ny, feet, cfg)
        )
        move = fwd & ~stop
        x, y = torch.where(move, nx, x), torch.where(move, ny, y)
        feet = torch.where(move, _ground(world, b, x, y), feet)
        target = feet + cfg.eye_height
        eye = eye + (target - eye).clamp(-cfg.climb_speed, cfg.climb_speed)
        poses[:, t, 0], poses[:, t, 1], poses[:, t, 2] = x, y, eye
        blocked[:, t] = stop
    poses[:, :, 3] = yaw_all
    poses[:, :, 4] = cfg.pitch_deg
    return poses.float(), blocked


def _ground(world: World, b, x, y) -> torch.Tensor:
    """Ground height (float64) under continuous positions."""
    col = world.lookup(b, x.floor().long(), y.floor().long())
    return unpack(col, "h").double()


def _obstacle(world: World, b, x, y, feet, cfg: WorldConfig) -> torch.Tensor:
    """Whether the column at (x, y) stops an agent whose feet are at ``feet``."""
    col = world.lookup(b, x.floor().long(), y.floor().long())
    h = unpack(col, "h").double()
    ob, ot = unpack(col, "ob").double(), unpack(col, "ot").double()
    body = (ot > ob) & (ot > h) & (ob < h + cfg.body_height)
    return (h - feet >= 2) | body
