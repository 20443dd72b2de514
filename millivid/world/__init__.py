"""millivid.world: a seeded procedural voxel world, the LOOPCRAFT agent law and a torch renderer.

``make_videos(seeds, cfg)`` is the entry point; see docs/WORLD.md.
"""

from millivid.world.blocks import BLOCK_KINDS
from millivid.world.config import WorldConfig
from millivid.world.testset import (
    TEST_SEED_OFFSET,
    distance_covered,
    select_test_actions,
    split_seeds,
)
from millivid.world.videos import WorldVideos, make_videos

__all__ = [
    "BLOCK_KINDS",
    "TEST_SEED_OFFSET",
    "WorldConfig",
    "WorldVideos",
    "distance_covered",
    "make_videos",
    "select_test_actions",
    "split_seeds",
]
