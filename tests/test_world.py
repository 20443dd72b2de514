"""make_videos: the contract's shapes, determinism, labels/depth sanity, textures."""

from dataclasses import replace

import pytest
import torch

from millivid.world import BLOCK_KINDS, PRESETS, TEST_SEED_OFFSET, make_videos
from millivid.world.blocks import KIND, block_textures

CFG = replace(PRESETS["tiny"], frames=24)


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


def test_test_seeds_are_a_separate_namespace():
    assert TEST_SEED_OFFSET > 10**8
