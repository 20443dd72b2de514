"""How much of a coarse step's answer its context holds, and in which form.

A MILLIVID step whose target is level l >= 1 starting at frame a sees the recent past at the
*finer* levels (level 0 holds [a - C_0, a), level 1 the C_1 frames before, ...) and its own level
only from a - (C_0 + ... + C_{l-1}) back. To continue the video it must read frame a - 1 at level
0 and say what that frame looks like at level l. This benchmark measures, per coarse level, on
held-out world videos encoded with an autoencoder (MSE per latent channel, relative to the
latents' variance, so 1.0 = knowing nothing):

* ``copy_last``: frame a - 1's own level-l latent as the guess for frame a (not in the context);
* ``same_level_in_context``: the most recent level-l frame the context does hold;
* ``linear_from_level0``: a ridge regression from frame a - 1's level-0 latent to frame a's
  level-l latent (fitted on half the videos, scored on the other half) — how much of the answer
  a simple read-out of the context's finest recent frame gives.

    python benchmarks/coarse_context.py --ae checkpoints/mini/ae --videos 8 --frames 512
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from millivid.jobs.autoencoder import load_autoencoder  # noqa: E402
from millivid.presets import load_preset  # noqa: E402
from millivid.world import TEST_SEED_OFFSET, make_videos  # noqa: E402


def relative_mse(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """MSE of pred vs truth [N, D] divided by the per-dimension variance of truth."""
    return float(((pred - truth) ** 2).mean() / truth.var(dim=0).mean())


def ridge(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Weights [D_in + 1, D_out] of y ~ [x, 1] W with an L2 penalty ``alpha``."""
    x1 = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    eye = torch.eye(x1.shape[1], dtype=x.dtype)
    eye[-1, -1] = 0
    return torch.linalg.solve(x1.T @ x1 + alpha * eye, x1.T @ y)


def measure(args: argparse.Namespace) -> dict:
    cfg = load_preset(args.preset)
    ae = load_autoencoder(Path(args.ae), args.device)
    world = replace(cfg.world, frames=args.frames)
    seeds = [TEST_SEED_OFFSET + 2000 + i for i in range(args.videos)]
    video = make_videos(seeds, world, device=args.device).video
    with torch.no_grad():
        lat = [ae.encode(v.to(args.device)) for v in video]  # per video: levels [T, h, w, C]
    ctx = cfg.plan.context
    out = {"ae": args.ae, "videos": args.videos, "frames": args.frames, "levels": {}}
    half = args.videos // 2
    for level in range(1, len(ctx)):
        back = sum(ctx[:level]) + 1  # the newest level-l frame in a level-l step's context
        a = torch.arange(back, args.frames)
        truth = [z[level][a].flatten(1).double().cpu() for z in lat]
        last = [z[level][a - 1].flatten(1).double().cpu() for z in lat]
        same = [z[level][a - back].flatten(1).double().cpu() for z in lat]
        fine = [z[0][a - 1].flatten(1).double().cpu() for z in lat]
        w = ridge(torch.cat(fine[:half]), torch.cat(truth[:half]), args.alpha)
        test_x = torch.cat(fine[half:])
        lin = torch.cat([test_x, torch.ones(len(test_x), 1, dtype=test_x.dtype)], 1) @ w
        y = torch.cat(truth[half:])
        out["levels"][level] = {
            "copy_last": relative_mse(torch.cat(last[half:]), y),
            "same_level_in_context": relative_mse(torch.cat(same[half:]), y),
            "frames_back": back,
            "linear_from_level0": relative_mse(lin, y),
        }
        r = out["levels"][level]
        print(
            f"level {level}: copy-last {r['copy_last']:.3f}, newest level-{level} frame in "
            f"context ({back} back) {r['same_level_in_context']:.3f}, linear read-out of "
            f"frame a-1 at level 0 {r['linear_from_level0']:.3f}",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ae", default="checkpoints/mini/ae")
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--videos", type=int, default=8, help="held-out world videos (even)")
    parser.add_argument("--frames", type=int, default=512)
    parser.add_argument("--alpha", type=float, default=10.0, help="ridge penalty")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
