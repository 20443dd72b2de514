"""Save PNG grids of world frames to look at (and for docs/figures).

    python benchmarks/world_grid.py --seed 1 --out docs/figures/world_grid.png
    python benchmarks/world_grid.py --seed 1 --size 256 --rows 1 --cols 4 --out /tmp/world_256.png

Rows alternate: even rows are every 2nd frame through a turn (turns look like turns), odd rows
are frames spread evenly over the whole video.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import imageio.v3 as iio
import numpy as np
import torch

from millivid.presets import PRESETS
from millivid.world import make_videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--cols", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="/tmp/world_grid.png")
    args = parser.parse_args()
    cfg = replace(PRESETS["mini"].world, size=args.size, frames=args.frames)
    v = make_videos([args.seed], cfg, args.device)
    video, actions = v.video[0].cpu().numpy(), v.actions[0].cpu()
    turn_starts = ((actions[1:] != 0) & (actions[:-1] == 0)).nonzero().squeeze(1) + 1
    rows = []
    spread = np.linspace(0, args.frames - 1, args.cols * max(1, args.rows // 2)).astype(int)
    for r in range(args.rows):
        if r % 2 == 0 and args.rows > 1 and len(turn_starts) > r // 2:
            first = max(0, int(turn_starts[r // 2 * 2]) - 4)
            idx = np.clip(first + 2 * np.arange(args.cols), 0, args.frames - 1)
        else:
            part = r // 2 if args.rows > 1 else 0
            idx = spread[part * args.cols : (part + 1) * args.cols]
        rows.append(np.concatenate([video[i] for i in idx], 1))
    iio.imwrite(args.out, np.concatenate(rows, 0))
    print(args.out, "labels present:", torch.unique(v.labels).tolist())


if __name__ == "__main__":
    main()
