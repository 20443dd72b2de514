"""Which revisit frames of the test set can a model with a bounded lookback recall at all?

A generated frame is a *revisit* when its ground-truth pose is within 2 blocks and 15° of some
context frame's (millivid.evaluate.splits). A model whose steps read at most ``--lookback``
frames before the frame they generate (255 for the mini and paper plans) can only recall such a
view from the context while the matching context frame is still inside that window; later it has
only its own generated frames. This counts, per horizon, the revisit frames of the A.1 test set
whose matching context frame lies within the lookback. Poses come from simulating the test
trajectories (no rendering): the same 64 videos `millivid data make --test` selects.

    python benchmarks/revisit_reach.py --videos 64 --context 256 --frames 768 --lookback 255

Each line also gives the revisit frames' share of the horizon's generated frames: the frames on
which PSNR against the ground truth can reward memory at all (docs/results/HISTORY.md, "The
memory ceiling"). ``--set world.KEY=VALUE`` changes the world, e.g. ``world.test_keep_lowest=1``
for test trajectories chosen harder to stay near the context.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from millivid.data.make import candidate_count, plan_seeds  # noqa: E402
from millivid.evaluate.horizons import horizon_ranges  # noqa: E402
from millivid.evaluate.splits import GAP_TOLERANCE, pose_gaps  # noqa: E402
from millivid.presets import EVAL_PRESETS, load_preset  # noqa: E402
from millivid.world.agent import simulate  # noqa: E402
from millivid.world.terrain import generate_worlds  # noqa: E402
from millivid.world.videos import video_actions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--videos", type=int, default=64, help="test videos (A.1 selection)")
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--frames", type=int, default=768, help="generated frames")
    parser.add_argument("--lookback", type=int, default=255, help="frames a step can read back")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override"
    )
    args = parser.parse_args()

    cfg = load_preset(args.preset, args.set).world
    seeds, _ = plan_seeds(args.videos, cfg, True, candidate_count(args.videos), 0, "cpu", 64)
    world = generate_worlds(seeds, cfg, "cpu")
    poses, _ = simulate(world, video_actions(seeds, cfg, test=True), cfg)
    ecfg = EVAL_PRESETS[args.preset]
    ends, names = ecfg.horizon_ends, ecfg.horizon_names
    revisits, reachable = np.zeros(len(ends), int), np.zeros(len(ends), int)
    c = args.context
    for p in poses.numpy():
        near = (
            pose_gaps(p[c : c + args.frames], p[:c], ecfg.revisit_distance, ecfg.revisit_yaw)
            <= 1.0 + GAP_TOLERANCE
        )
        for k in np.flatnonzero(near.any(axis=1)):  # k: 0-based generated frame
            h = int(np.searchsorted(ends, k + 1))  # horizon of frame k + 1 (1-based)
            revisits[h] += 1
            reachable[h] += near[k, max(0, c + k - args.lookback) :].any()
    spans = horizon_ranges(args.frames, names, ends)
    for name, n, r in zip(names, revisits, reachable, strict=True):
        a, b = spans.get(name, (0, 0))
        share = n / max(len(seeds) * (b - a), 1)
        print(
            f"{name}: {n} revisit frames ({share:.1%} of the generated frames), {r} "
            f"({r / max(n, 1):.0%}) with a matching context frame within {args.lookback} frames"
        )


if __name__ == "__main__":
    main()
