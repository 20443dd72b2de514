"""Paper A.1 test-set selection and the Chamfer distance."""

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.presets import PRESETS
from millivid.world import TEST_SEED_OFFSET, select_test_actions
from millivid.world.agent import FORWARD, flat_trajectory
from millivid.world.testset import CHAMFER_CHUNK, chamfer_distance, context_chamfer
from millivid.world.videos import video_actions

CFG = replace(PRESETS["tiny"].world, frames=128, test_context_frames=32, test_action_candidates=40)


def test_chamfer_closed_forms():
    a = torch.tensor([[[0.0, 0.0]]])
    b = torch.tensor([[[3.0, 4.0]]])
    assert chamfer_distance(a, b).item() == pytest.approx(10.0)
    pts = torch.rand(1, 7, 2)
    assert chamfer_distance(pts, pts).item() == pytest.approx(0.0, abs=1e-6)


points = st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50)), min_size=1, max_size=12)


@settings(max_examples=30, deadline=None)
@given(points, points, st.floats(-20, 20), st.floats(-20, 20))
def test_chamfer_symmetric_nonnegative_translation_invariant(a, b, dx, dy):
    ta, tb = torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64)
    shift = torch.tensor([dx, dy], dtype=torch.float64)
    c = chamfer_distance(ta, tb)
    assert c.item() >= 0
    assert c.item() == pytest.approx(chamfer_distance(tb, ta).item(), abs=1e-9)
    assert c.item() == pytest.approx(chamfer_distance(ta + shift, tb + shift).item(), abs=1e-6)


def test_flat_trajectory_of_a_square_closes():
    cfg = replace(CFG, turn_frames=3, speed=0.5)
    side = [FORWARD] * 8
    turn = [1] * 3
    actions = torch.tensor([(side + turn) * 4])
    xy = flat_trajectory(actions, torch.zeros(1), cfg)
    assert torch.allclose(xy[0, -1], torch.zeros(2, dtype=torch.float64), atol=1e-9)
    assert xy[0, 7].tolist() == pytest.approx([4.0, 0.0])


@pytest.mark.parametrize("i", range(3))
def test_chosen_sequence_beats_the_median_candidate(i):
    seed = TEST_SEED_OFFSET + i
    choice = select_test_actions(seed, CFG)
    assert choice.chamfer.shape == (CFG.test_action_candidates,)
    chosen = choice.chamfer[choice.chosen]
    assert chosen < choice.chamfer.median()
    rank = int((choice.chamfer < chosen).sum())
    assert rank < CFG.test_keep_lowest
    again = select_test_actions(seed, CFG)
    assert torch.equal(choice.actions, again.actions)
    recomputed = context_chamfer(choice.actions[None], CFG)
    assert recomputed.item() == pytest.approx(chosen.item())


def test_test_videos_use_the_selected_actions():
    seeds = [TEST_SEED_OFFSET + 5, TEST_SEED_OFFSET + 6]
    actions = video_actions(seeds, CFG, test=True)
    for row, seed in zip(actions, seeds):
        assert torch.equal(row, select_test_actions(seed, CFG).actions)


def test_choices_spread_over_processes_are_the_same():
    seeds = [TEST_SEED_OFFSET + s for s in range(6)]
    serial = video_actions(seeds, CFG, test=True)
    assert torch.equal(video_actions(seeds, CFG, test=True, processes=2), serial)
    assert serial.shape == (6, CFG.frames) and serial.dtype == torch.long


def test_selected_test_trajectories_overlap_more_than_training_ones():
    seeds = range(12)
    train = context_chamfer(video_actions(list(seeds), CFG), CFG).mean()
    test = context_chamfer(video_actions([TEST_SEED_OFFSET + s for s in seeds], CFG, True), CFG)
    assert test.mean() < train


def test_revisit_training_videos_take_the_a1_choice_of_their_own_seeds():
    seeds = [3, 4]
    law = video_actions(seeds, CFG)
    revisit = video_actions(seeds, replace(CFG, train_actions="revisit"))
    for row, seed in zip(revisit, seeds):
        assert torch.equal(row, select_test_actions(seed, CFG).actions)
    assert not torch.equal(law, revisit)
    # the law's first draw is the first candidate: "law" is the A.1 pool's candidate 0
    assert torch.equal(
        law[0],
        video_actions([3], replace(CFG, test_action_candidates=1, train_actions="revisit"))[0],
    )


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 3 * CHAMFER_CHUNK + 1), st.integers(0, 2**31))
def test_context_chamfer_in_chunks_equals_one_call(k, seed):
    # the test set and the revisit training videos depend on these exact values
    actions = torch.randint(0, 3, (k, CFG.frames), generator=torch.Generator().manual_seed(seed))
    xy = flat_trajectory(actions, torch.zeros(k), CFG)
    c = CFG.test_context_frames
    assert torch.equal(context_chamfer(actions, CFG), chamfer_distance(xy[:, :c], xy[:, c:]))


def test_bad_context_length_is_a_clear_error():
    with pytest.raises(ValueError, match="test_context_frames"):
        context_chamfer(torch.zeros(2, 10, dtype=torch.long), replace(CFG, test_context_frames=10))
