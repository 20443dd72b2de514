"""Test-set action selection (paper A.1) and the distance-covered filter's measure.

For each test video: sample ``test_action_candidates`` action sequences from the law, compute
their flat-plane trajectories, the Chamfer distance between the context XY points (the first
``test_context_frames`` frames) and the rest, and pick uniformly among the ``test_keep_lowest``
lowest. (Rendering many candidates and keeping those with the largest ``distance_covered`` is
the dataset writer's job: ``millivid data make --test``.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from millivid.world.agent import flat_trajectory, sample_actions
from millivid.world.config import WorldConfig

# Training seeds lie in [0, TEST_SEED_OFFSET), test seeds in [TEST_SEED_OFFSET, ...): split_seeds
# refuses anything else, so the two namespaces cannot overlap.
TEST_SEED_OFFSET = 1_000_000_000


def split_seeds(first: int, count: int, test: bool) -> list[int]:
    """Seeds ``first .. first+count-1`` of the training or the test namespace.

    Training: the seeds themselves, all of which must lie in ``[0, TEST_SEED_OFFSET)``. Test:
    ``TEST_SEED_OFFSET + first + j`` with ``first >= 0``. A range that would leave its namespace
    is an error, so a training seed can never equal a test seed.
    """
    split = "test" if test else "training"
    if first < 0 or count < 0:
        raise ValueError(f"{split} seeds: first seed {first} and count {count} must be >= 0")
    if test:
        return [TEST_SEED_OFFSET + first + j for j in range(count)]
    if first + count > TEST_SEED_OFFSET:
        raise ValueError(
            f"training seeds {first}..{first + count - 1} reach TEST_SEED_OFFSET = "
            f"{TEST_SEED_OFFSET} (test seeds start there); use a first seed <= "
            f"{TEST_SEED_OFFSET - count}"
        )
    return list(range(first, first + count))


def action_rng(seed: int) -> random.Random:
    """The action-law random stream of one video seed."""
    return random.Random(f"millivid-actions:{seed}")


def chamfer_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric Chamfer distance between point sets a [K, Na, 2] and b [K, Nb, 2] -> [K].

    mean over a of the distance to the nearest b, plus mean over b of the nearest a.
    """
    dist = torch.cdist(a, b)  # [K, Na, Nb]
    return dist.amin(2).mean(1) + dist.amin(1).mean(1)


# Trajectories per chamfer_distance call: each call's [n, context, rest] float64 distances stay in
# the CPU caches (about 3 times faster than one call for all 100 candidates, the same values).
CHAMFER_CHUNK = 8


def context_chamfer(actions: torch.Tensor, cfg: WorldConfig) -> torch.Tensor:
    """Chamfer distance context-XY vs rest of flat trajectories: actions int [K, T] -> [K]."""
    c = cfg.test_context_frames
    if not 0 < c < actions.shape[1]:
        raise ValueError(f"world.test_context_frames={c} must be in (0, frames={actions.shape[1]})")
    xy = flat_trajectory(actions, torch.zeros(actions.shape[0]), cfg)
    return torch.cat([chamfer_distance(p[:, :c], p[:, c:]) for p in xy.split(CHAMFER_CHUNK)])


@dataclass
class TestChoice:
    """The A.1 choice for one seed: actions int64 [T], every candidate's Chamfer distance [K]
    and the chosen candidate's index."""

    actions: torch.Tensor
    chamfer: torch.Tensor
    chosen: int


def select_test_actions(seed: int, cfg: WorldConfig) -> TestChoice:
    """Paper A.1 action selection for one test video seed (deterministic in the seed)."""
    rng = action_rng(seed)
    k = cfg.test_action_candidates
    keep = min(cfg.test_keep_lowest, k)
    if keep < 1:
        raise ValueError("world.test_action_candidates and world.test_keep_lowest must be >= 1")
    candidates = torch.tensor([sample_actions(rng, cfg) for _ in range(k)], dtype=torch.long)
    chamfer = context_chamfer(candidates, cfg)
    lowest = torch.argsort(chamfer, stable=True)[:keep].tolist()
    chosen = random.Random(f"millivid-test-choice:{seed}").choice(lowest)
    return TestChoice(candidates[chosen], chamfer, chosen)


def distance_covered(poses: torch.Tensor) -> torch.Tensor:
    """Path length in XY: poses float [B, T, 5] -> float [B]."""
    return (poses[:, 1:, :2] - poses[:, :-1, :2]).norm(dim=-1).sum(-1)
