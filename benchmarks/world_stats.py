"""Trajectory statistics of training vs test (paper A.1) videos: no rendering needed.

    python benchmarks/world_stats.py --preset mini --seeds 64

Training seeds ``0 .. n-1`` take the law's actions; test seeds ``TEST_SEED_OFFSET + 0 .. n-1``
take the A.1 choice (lowest context-vs-rest Chamfer among the law's candidates). Prints, per
split: Chamfer distance context vs rest (mean / median, blocks), distance covered in the world
(mean) with the flat-plane bound (same actions, no collisions), and the fraction of frames
blocked. The ``data make --test`` distance-covered filter is not applied here.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from millivid.presets import PRESETS
from millivid.world import TEST_SEED_OFFSET, distance_covered
from millivid.world.agent import flat_trajectory, simulate
from millivid.world.terrain import generate_worlds
from millivid.world.testset import context_chamfer
from millivid.world.videos import video_actions


def split_stats(seeds: list[int], cfg, test: bool, device: str, batch: int) -> dict[str, float]:
    """Chamfer (mean, median), distance covered (world, flat bound) and blocked fraction."""
    chamfer, world_dist, flat_dist, blocked = [], [], [], []
    for i in range(0, len(seeds), batch):
        chunk = seeds[i : i + batch]
        actions = video_actions(chunk, cfg, test)  # int64 [B, T]
        chamfer.append(context_chamfer(actions, cfg))
        flat = flat_trajectory(actions, torch.zeros(len(chunk)), cfg)  # [B, T, 2]
        flat_dist.append(distance_covered(flat))
        world = generate_worlds(chunk, cfg, device)
        poses, stuck = simulate(world, actions.to(device), cfg)
        world_dist.append(distance_covered(poses).cpu())
        blocked.append(stuck.float().mean(1).cpu())
    c = torch.cat(chamfer).double()
    return {
        "chamfer_mean": c.mean().item(),
        "chamfer_median": c.median().item(),
        "distance": torch.cat(world_dist).double().mean().item(),
        "flat_bound": torch.cat(flat_dist).double().mean().item(),
        "blocked": torch.cat(blocked).double().mean().item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mini", choices=sorted(PRESETS))
    parser.add_argument("--seeds", type=int, default=64, help="videos per split")
    parser.add_argument("--frames", type=int, default=None, help="default: the preset's")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16, help="worlds simulated at once")
    args = parser.parse_args()
    cfg = PRESETS[args.preset].world
    if args.frames is not None:
        cfg = replace(cfg, frames=args.frames)
    print(f"preset={args.preset} frames={cfg.frames} seeds per split={args.seeds}")
    print(
        "| trajectories | Chamfer context vs rest (mean / median) | distance covered (flat bound)"
        " | frames blocked |"
    )
    for name, test, offset in (("training", False, 0), ("test (A.1)", True, TEST_SEED_OFFSET)):
        t0 = time.perf_counter()
        seeds = [offset + j for j in range(args.seeds)]
        s = split_stats(seeds, cfg, test, args.device, args.batch)
        print(
            f"| {name} | {s['chamfer_mean']:.1f} / {s['chamfer_median']:.1f} | "
            f"{s['distance']:.1f} ({s['flat_bound']:.1f}) | {100 * s['blocked']:.1f} % |"
            f"  ({time.perf_counter() - t0:.1f} s)"
        )


if __name__ == "__main__":
    main()
