"""Trajectory statistics of training vs test (paper A.1) videos: no rendering needed.

    python benchmarks/world_stats.py --preset mini --seeds 64

Training seeds ``0 .. n-1`` take the law's actions (``world.train_actions = law``, the default)
or the A.1 choice (``revisit``); test seeds ``TEST_SEED_OFFSET + 0 .. n-1`` take the A.1 choice
(lowest context-vs-rest Chamfer among the law's candidates). Prints, per split: Chamfer distance
context vs rest (mean / median, blocks), distance covered in the world (mean) with the
flat-plane bound (same actions, no collisions), the fraction of frames blocked, and the share of
*returns*: frames (from frame ``--gap`` on) whose pose is within 2 blocks and 15° of a frame at
least ``--gap`` frames earlier — the views a memory of the distant past could recall, the
training signal for it. The ``data make --test`` distance-covered filter is not applied here.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from millivid.evaluate.splits import GAP_TOLERANCE, pose_gaps
from millivid.presets import PRESETS
from millivid.world import TEST_SEED_OFFSET, distance_covered
from millivid.world.agent import flat_trajectory, simulate
from millivid.world.terrain import generate_worlds
from millivid.world.testset import context_chamfer
from millivid.world.videos import video_actions


def returns(poses: np.ndarray, gap: int) -> float:
    """Share of frames t >= gap of one video (poses float [T, 5]) within 2 blocks and 15° of a
    frame before t - gap + 1."""
    near = pose_gaps(poses[gap:], poses, 2.0, 15.0) <= 1.0 + GAP_TOLERANCE  # [T - gap, T]
    earlier = np.arange(len(poses))[None, :] <= np.arange(len(poses) - gap)[:, None]
    return float((near & earlier).any(axis=1).mean())


def split_stats(
    seeds: list[int], cfg, test: bool, device: str, batch: int, gap: int
) -> dict[str, float]:
    """Chamfer (mean, median), distance covered (world, flat bound), blocked fraction and the
    share of returns after ``gap`` frames."""
    chamfer, world_dist, flat_dist, blocked, back = [], [], [], [], []
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
        back += [returns(p, gap) for p in poses.cpu().numpy()]
    c = torch.cat(chamfer).double()
    return {
        "chamfer_mean": c.mean().item(),
        "chamfer_median": c.median().item(),
        "distance": torch.cat(world_dist).double().mean().item(),
        "flat_bound": torch.cat(flat_dist).double().mean().item(),
        "blocked": torch.cat(blocked).double().mean().item(),
        "returns": float(np.mean(back)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mini", choices=sorted(PRESETS))
    parser.add_argument("--seeds", type=int, default=64, help="videos per split")
    parser.add_argument("--frames", type=int, default=None, help="default: the preset's")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16, help="worlds simulated at once")
    parser.add_argument("--gap", type=int, default=64, help="frames back a return must reach")
    args = parser.parse_args()
    cfg = PRESETS[args.preset].world
    if args.frames is not None:
        cfg = replace(cfg, frames=args.frames)
    print(f"preset={args.preset} frames={cfg.frames} seeds per split={args.seeds}")
    print(
        "| trajectories | Chamfer context vs rest (mean / median) | distance covered (flat bound)"
        f" | frames blocked | returns after {args.gap} frames |"
    )
    splits = (
        ("training (law)", replace(cfg, train_actions="law"), False, 0),
        ("training (revisit)", replace(cfg, train_actions="revisit"), False, 0),
        ("test (A.1)", cfg, True, TEST_SEED_OFFSET),
    )
    for name, split_cfg, test, offset in splits:
        t0 = time.perf_counter()
        seeds = [offset + j for j in range(args.seeds)]
        s = split_stats(seeds, split_cfg, test, args.device, args.batch, args.gap)
        print(
            f"| {name} | {s['chamfer_mean']:.1f} / {s['chamfer_median']:.1f} | "
            f"{s['distance']:.1f} ({s['flat_bound']:.1f}) | {100 * s['blocked']:.1f} % | "
            f"{100 * s['returns']:.1f} % |  ({time.perf_counter() - t0:.1f} s)"
        )


if __name__ == "__main__":
    main()
