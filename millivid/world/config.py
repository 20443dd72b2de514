"""World and agent configuration: every terrain, render and LOOPCRAFT-law parameter.

Units: lengths in blocks (1 block = 1 unit), angles in degrees, times in frames.

The agent law (paper §4, LOOPCRAFT; implemented in ``millivid.world.agent``):

* The agent runs forward ``speed`` blocks per frame (action 0).
* After a forward run of ``run_min``..``run_max`` frames it starts a *turn group*: ``g`` turns in
  the same direction, ``g`` drawn from ``turn_group_sizes`` with ``turn_group_probs`` (biased to
  pairs and quartets, so it comes back to where it has been), the direction left/right 50/50.
* One turn rotates the yaw by exactly 90° over ``turn_frames`` frames (action 1 left, 2 right)
  and the agent does not move while turning. Turns within a group are separated by forward runs
  of ``group_gap_min``..``group_gap_max`` frames (at least 1, so turns never merge).
* Collisions: a step into a column whose ground is one block higher is a jump (the camera rises
  ``climb_speed`` blocks/frame); two or more blocks higher, a tree trunk or a landmark blocks the
  agent, which then stays where it is (the action is still "forward"). Falling is the same, down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class WorldConfig:
    """Rendering, terrain, agent-law and test-set parameters of the procedural world."""

    # --- video ---
    size: int = 64  # frames are size x size pixels
    frames: int = 1024  # frames per video
    # --- camera / renderer ---
    fov_deg: float = 70.0  # horizontal (= vertical, square frames) field of view
    pitch_deg: float = -10.0  # camera pitch, negative looks down
    eye_height: float = 1.62  # camera above the feet
    view_distance: float = 40.0  # rays stop here; depth of sky pixels
    fog_start: float = 20.0  # fog ramps from here (fraction 0) to view_distance (fraction 1)
    sun_azimuth_deg: float = 35.0
    sun_elevation_deg: float = 55.0
    render_chunk_rays: int = 0  # rays marched at once; 0 = auto (2^20 on CPU, 2^23 on GPU)
    # --- terrain ---
    world_size: int = 512  # toroidal world of world_size^2 columns (power of 2)
    base_height: int = 12  # mean ground height
    hill_amplitude: float = 9.0  # +- height of the largest hills
    noise_periods: tuple[int, ...] = (128, 64, 32, 16)  # value-noise octaves (blocks)
    noise_weights: tuple[float, ...] = (1.0, 0.5, 0.25, 0.12)
    sea_level: int = 7  # columns at or below are water
    snow_height: int = 20  # columns at or above are snow-capped stone
    stone_height: int = 17  # columns at or above (below snow) are bare stone
    tree_cell: int = 7  # one tree candidate per tree_cell^2 blocks (jittered grid)
    tree_prob: float = 0.3  # probability that a candidate on grass becomes a tree
    trunk_height: int = 4
    landmark_cell: int = 24  # one landmark candidate per landmark_cell^2 blocks
    landmark_prob: float = 0.6
    landmark_min_height: int = 9  # pillar height above the ground
    landmark_max_height: int = 15
    spawn_clear_radius: int = 3  # no trees/landmarks this close to the start position
    # --- agent law (see module docstring) ---
    speed: float = 0.25  # blocks per forward frame
    turn_frames: int = 6  # frames per 90° turn
    run_min: int = 16  # forward frames between turn groups
    run_max: int = 96
    group_gap_min: int = 8  # forward frames between turns of one group
    group_gap_max: int = 48
    turn_group_sizes: tuple[int, ...] = (1, 2, 4)
    turn_group_probs: tuple[float, ...] = (0.25, 0.4, 0.35)
    agent_radius: float = 0.3  # look-ahead for collisions beyond the step
    body_height: float = 1.8
    climb_speed: float = 0.5  # camera z change per frame when jumping/falling
    # training videos' actions: "law" (each seed's first draw from the law) or "revisit" (the
    # test set's A.1 choice, lowest context-vs-rest Chamfer, applied to the training seeds:
    # trajectories that come back to where they started, as the test videos do)
    train_actions: Literal["law", "revisit"] = "law"
    # --- test set (paper A.1) ---
    test_action_candidates: int = 100  # action sequences sampled per test video
    test_keep_lowest: int = 10  # choose uniformly among this many lowest Chamfer distances
    test_context_frames: int = 256  # context XY (first frames) vs the rest
