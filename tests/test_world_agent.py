"""The LOOPCRAFT agent law: turns, movement, collisions, turn-group statistics."""

import random
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.presets import PRESETS
from millivid.world import distance_covered
from millivid.world.agent import FORWARD, LEFT, RIGHT, sample_actions, simulate
from millivid.world.terrain import generate_worlds, unpack
from millivid.world.testset import action_rng
from millivid.world.videos import video_actions

CFG = replace(PRESETS["tiny"].world, frames=400, tree_prob=0.9)


@pytest.fixture(scope="module")
def run():
    seeds = list(range(8))
    world = generate_worlds(seeds, CFG)
    actions = video_actions(seeds, CFG)
    poses, blocked = simulate(world, actions, CFG)
    return world, actions, poses.double(), blocked


def _runs(seq):
    """Maximal runs of equal values: list of (value, start, length)."""
    out, start = [], 0
    for i in range(1, len(seq) + 1):
        if i == len(seq) or seq[i] != seq[start]:
            out.append((seq[start], start, i - start))
            start = i
    return out


def test_every_completed_turn_is_exactly_90_degrees(run):
    _, actions, poses, _ = run
    yaw = poses[..., 3]
    for b in range(actions.shape[0]):
        seq = actions[b].tolist()
        for value, start, length in _runs(seq):
            if value == FORWARD or start == 0 or start + length == len(seq):
                continue  # ignore a turn cut by the video's ends
            assert length == CFG.turn_frames
            total = yaw[b, start + length - 1] - yaw[b, start - 1]
            assert total == pytest.approx(90.0 if value == LEFT else -90.0, abs=1e-3)


def test_yaw_only_changes_when_turning(run):
    _, actions, poses, _ = run
    dyaw = poses[:, 1:, 3] - poses[:, :-1, 3]
    fwd = actions[:, 1:] == FORWARD
    assert dyaw[fwd].abs().max() < 1e-4
    assert (dyaw[~fwd].abs() > 1).all()


def test_forward_moves_unless_blocked_and_turns_stay_put(run):
    _, actions, poses, blocked = run
    step = (poses[:, 1:, :2] - poses[:, :-1, :2]).norm(dim=-1)
    fwd, blk = actions[:, 1:] == FORWARD, blocked[:, 1:]
    assert torch.allclose(step[fwd & ~blk], torch.full_like(step[fwd & ~blk], CFG.speed), atol=1e-3)
    assert (step[fwd & blk] == 0).all()
    assert (step[~fwd] == 0).all()
    assert not blocked[actions != FORWARD].any()
    assert blk.any(), "dense trees should block the agent at least once in 8 x 400 frames"


def test_blocked_means_an_obstacle_ahead(run):
    world, actions, poses, blocked = run
    b, t = blocked.nonzero(as_tuple=True)
    assert (t > 0).all()
    prev = poses[b, t - 1]
    yaw = torch.deg2rad(poses[b, t, 3])
    reach = CFG.speed + CFG.agent_radius
    checks = []
    for dist in (reach, CFG.speed):
        x = (prev[:, 0] + dist * yaw.cos()).floor().long()
        y = (prev[:, 1] + dist * yaw.sin()).floor().long()
        col = world.lookup(b, x, y)
        h, ob, ot = (unpack(col, k).double() for k in ("h", "ob", "ot"))
        here = world.lookup(b, prev[:, 0].floor().long(), prev[:, 1].floor().long())
        feet = unpack(here, "h").double()
        step_up = h - feet >= 2
        body = (ot > ob) & (ot > h) & (ob < h + CFG.body_height)
        checks.append(step_up | body)
    assert (checks[0] | checks[1]).all()


def test_camera_height_follows_the_ground_smoothly(run):
    _, _, poses, _ = run
    dz = (poses[:, 1:, 2] - poses[:, :-1, 2]).abs()
    assert dz.max() <= CFG.climb_speed + 1e-5
    assert (dz > 0).any(), "the terrain should make the agent climb or fall somewhere"


def test_actions_are_deterministic_per_seed():
    a = sample_actions(action_rng(11), CFG)
    assert a == sample_actions(action_rng(11), CFG)
    assert a != sample_actions(action_rng(12), CFG)
    assert len(a) == CFG.frames


def test_turns_are_biased_to_pairs_and_quartets():
    cfg = replace(PRESETS["mini"].world, frames=1024)
    same = total = 0
    streaks = {1: 0, 2: 0, 3: 0, 4: 0}
    for seed in range(150):
        turns = [v for v, _, _ in _runs(sample_actions(random.Random(seed), cfg)) if v != FORWARD]
        same += sum(a == b for a, b in zip(turns, turns[1:]))
        total += len(turns) - 1
        for _, _, n in _runs(turns[1:-1]):
            if n <= 4:
                streaks[n] += 1
    assert same / total > 0.6  # memoryless directions would give 0.5
    # a memoryless law makes 3-streaks more common than 4-streaks; quartets make it the reverse
    assert streaks[4] > streaks[3]
    assert streaks[2] > streaks[3]


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 3), st.integers(2, 8))
def test_law_respects_its_parameters(seed, gap, turn_frames):
    cfg = replace(PRESETS["tiny"].world, group_gap_min=gap, turn_frames=turn_frames, frames=300)
    seq = sample_actions(random.Random(seed), cfg)
    runs = _runs(seq)
    for value, start, length in runs:
        if value == FORWARD and 0 < start and start + length < len(seq):
            assert length >= gap
        if value in (LEFT, RIGHT) and start + length < len(seq):
            assert length == turn_frames


def test_distance_covered_of_a_known_path():
    poses = torch.zeros(2, 5, 5)
    poses[0, :, 0] = torch.arange(5.0)  # 4 unit steps along x
    poses[1, :, 0] = torch.tensor([0.0, 3, 3, 3, 3])
    poses[1, :, 1] = torch.tensor([0.0, 4, 4, 4, 0])
    assert torch.allclose(distance_covered(poses), torch.tensor([4.0, 9.0]))
