"""make_videos: the contract's shapes, determinism, labels/depth sanity, textures."""

from dataclasses import replace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from millivid.presets import PRESETS
from millivid.world import BLOCK_KINDS, TEST_SEED_OFFSET, make_videos, split_seeds
from millivid.world.blocks import KIND, block_textures

CFG = replace(PRESETS["tiny"].world, frames=24)


@pytest.fixture(scope="module")
def pair():
    return make_videos([3, 4], CFG)


def test_contract_shapes_and_dtypes(pair):
    b, t, s = 2, CFG.frames, CFG.size
    assert pair.video.shape == (b, t, s, s, 3) and pair.video.dtype == torch.uint8
    assert pair.actions.shape == (b, t) and pair.actions.dtype == torch.int64
    assert pair.poses.shape == (b, t, 5) and pair.poses.dtype == torch.float32
    assert pair.labels.shape == (b, t, s, s) and pair.labels.dtype == torch.uint8
    assert pair.depth.shape == (b, t, s, s) and pair.depth.dtype == torch.float16
    assert set(pair.actions.unique().tolist()) <= {0, 1, 2}
    assert int(pair.labels.max()) < len(BLOCK_KINDS)


def test_same_seed_same_bytes_whatever_the_batch(pair):
    alone = make_videos([4], CFG)
    assert torch.equal(alone.video[0], pair.video[1])
    assert torch.equal(alone.labels[0], pair.labels[1])
    assert torch.equal(alone.depth[0], pair.depth[1])
    assert torch.equal(alone.poses[0], pair.poses[1])


def test_different_seeds_differ(pair):
    assert not torch.equal(pair.video[0], pair.video[1])
    assert not torch.equal(pair.poses[0, :, :2], pair.poses[1, :, :2])


def test_sky_exactly_where_depth_is_max(pair):
    sky = pair.labels == 0
    at_max = pair.depth == torch.tensor(CFG.view_distance, dtype=torch.float16)
    assert torch.equal(sky, at_max)
    assert sky.any() and (~sky).any()
    solid = pair.depth[~sky].float()
    assert solid.min() > 0 and solid.max() < CFG.view_distance


def test_sky_is_above_the_ground(pair):
    """Sky pixels are blue-ish and sit in the upper rows (the camera looks slightly down)."""
    sky = pair.labels == 0
    rows = torch.arange(CFG.size).view(1, 1, -1, 1).expand_as(sky)
    assert rows[sky].float().mean() < CFG.size / 2 - 2
    rgb = pair.video[sky].float()
    assert (rgb[:, 2] > rgb[:, 0]).float().mean() > 0.95


def test_frames_have_detail_not_flat_colour(pair):
    ground = pair.labels == KIND["grass"]
    assert ground.sum() > 100
    green = pair.video[ground].float()
    assert green[:, 1].std() > 8  # texture + shading, not one flat green


def test_textures_distinct_and_detailed():
    atlas = block_textures().float()  # [K, 3, T, T, 3]
    means = atlas[1:].mean(dim=(2, 3))  # [K-1, 3 faces, 3]
    tops = means[:, 0]
    for i in range(len(tops)):
        for j in range(i + 1, len(tops)):
            assert (tops[i] - tops[j]).abs().max() > 8, (BLOCK_KINDS[i + 1], BLOCK_KINDS[j + 1])
    for kind in ("grass", "dirt", "stone", "wood", "leaves", "red"):
        assert atlas[KIND[kind], 0].std(dim=(0, 1)).max() > 6, kind
    assert torch.equal(block_textures(), block_textures())


def _seeds_or_none(first: int, count: int, test: bool) -> list[int] | None:
    try:
        return split_seeds(first, count, test)
    except ValueError as err:
        assert str(TEST_SEED_OFFSET) in str(err) or "must be >= 0" in str(err)
        return None


# first seeds near 0 and near TEST_SEED_OFFSET, where the namespaces meet
FIRST = st.one_of(st.integers(-3, 3), st.integers(TEST_SEED_OFFSET - 40, TEST_SEED_OFFSET + 3))


@given(
    train_first=FIRST, train_count=st.integers(0, 30), test_first=FIRST, count=st.integers(0, 30)
)
def test_training_and_test_seeds_never_overlap(train_first, train_count, test_first, count):
    train = _seeds_or_none(train_first, train_count, test=False)
    test = _seeds_or_none(test_first, count, test=True)
    if train is not None:
        assert all(0 <= s < TEST_SEED_OFFSET for s in train) and len(train) == train_count
    else:  # refused exactly when the range would leave the training namespace
        assert train_first < 0 or train_first + train_count > TEST_SEED_OFFSET
    if test is not None:
        assert all(s >= TEST_SEED_OFFSET for s in test) and len(test) == count
    else:
        assert test_first < 0
    assert not set(train or ()) & set(test or ())


def test_training_seeds_reaching_the_test_offset_are_refused():
    with pytest.raises(ValueError, match=f"reach TEST_SEED_OFFSET = {TEST_SEED_OFFSET}"):
        split_seeds(TEST_SEED_OFFSET - 5, 10, test=False)
    assert split_seeds(TEST_SEED_OFFSET - 10, 10, test=False)[-1] == TEST_SEED_OFFSET - 1
    with pytest.raises(ValueError, match="must be >= 0"):
        split_seeds(-1, 3, test=True)  # would reach below the offset, into training seeds
