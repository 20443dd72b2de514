"""Render throughput of the procedural world (frames/s), end to end and renderer only.

    python benchmarks/bench_render.py --device cpu --size 64 --batch 4 --frames 256
    python benchmarks/bench_render.py --device cuda --size 64 --batch 256 --frames 1024

End to end = world generation + agent simulation + rendering (what ``make_videos`` does);
renderer only = ``Renderer.render`` on precomputed poses. The first (warm-up) run is not timed.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from millivid.presets import PRESETS
from millivid.world import make_videos
from millivid.world.agent import simulate
from millivid.world.render import Renderer
from millivid.world.terrain import generate_worlds
from millivid.world.videos import video_actions


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4, help="videos rendered at once")
    parser.add_argument("--frames", type=int, default=256, help="frames per video")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chunk-rays", type=int, default=0, help="0 = auto")
    args = parser.parse_args()
    device = torch.device(args.device)
    cfg = replace(
        PRESETS["mini"].world, size=args.size, frames=args.frames, render_chunk_rays=args.chunk_rays
    )
    n = args.batch * args.frames
    print(
        f"device={device} threads={torch.get_num_threads()} size={args.size} "
        f"batch={args.batch} frames={args.frames} ({n} frames per run)"
    )

    seeds = list(range(args.batch))
    make_videos(seeds[:1], replace(cfg, frames=min(cfg.frames, 32)), device)  # warm-up
    times = []
    for r in range(args.repeats):
        _sync(device)
        t0 = time.perf_counter()
        make_videos([s + 1000 * r for s in seeds], cfg, device)
        _sync(device)
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(f"end to end    : {n / best:10.1f} frames/s  ({best:.2f} s per run)")

    world = generate_worlds(seeds, cfg, device)
    poses, _ = simulate(world, video_actions(seeds, cfg).to(device), cfg)
    b = torch.arange(args.batch, device=device).repeat_interleave(args.frames)
    renderer = Renderer(cfg, device)
    flat = poses.view(-1, 5)
    times = []
    for _ in range(args.repeats):
        _sync(device)
        t0 = time.perf_counter()
        renderer.render(world, b, flat)
        _sync(device)
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(f"renderer only : {n / best:10.1f} frames/s  ({best:.2f} s per run)")


if __name__ == "__main__":
    main()
