"""``millivid baseline``: trivial baselines of a test set, written like rollouts (docs/EVALUATION.md)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from millivid.cli.common import add_device_flag, positive_int
from millivid.cli.evaluate import add_revisit_flags, revisit_updates
from millivid.evaluate.baselines import AE_BASELINES, BASELINES, parse_kinds, write_baselines
from millivid.evaluate.config import EvalConfig
from millivid.jobs.autoencoder import frame_reconstructor


def run_baseline(args: argparse.Namespace) -> int:
    cfg = replace(EvalConfig(), **revisit_updates(args))
    kinds = parse_kinds(args.kind, autoencoder=args.ae is not None)
    reconstruct = None
    if args.ae is not None and any(k in AE_BASELINES for k in kinds):
        reconstruct = frame_reconstructor(args.ae, args.device)
    written = write_baselines(args.gt_dir, args.out, kinds, args.context, cfg, reconstruct)
    for kind, paths in written.items():
        print(f"{kind}: {len(paths)} videos in {paths[0].parent}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "baseline",
        help="trivial baselines (copy-last, context-mean, nearest-pose) of a test set",
        description="Write each ground-truth video as a trivial baseline: the context frames, "
        "then generated frames that copy the last context frame, the mean context frame, or the "
        "context frame of nearest ground-truth pose. With --ae, also through that autoencoder "
        "(encoded and decoded at level 0): <kind>-ae, and autoencoder (the ground truth itself, "
        "the ceiling of any model decoding through it). Score them with millivid evaluate.",
    )
    p.add_argument(
        "--kind",
        required=True,
        help=f"{', '.join(BASELINES + AE_BASELINES)} (the last four need --ae), a comma list of "
        "them, or all (with --ae: all seven)",
    )
    p.add_argument(
        "--ae", type=Path, default=None, help="autoencoder folder for the -ae kinds and autoencoder"
    )
    add_device_flag(p)
    p.add_argument("--gt-dir", type=Path, required=True, help="ground-truth .npz videos")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="one kind: OUT/<video>.npz (e.g. RUN/rollouts/copy-last); several: "
        "OUT/<kind>/<video>.npz (e.g. RUN/rollouts)",
    )
    p.add_argument(
        "--context", type=positive_int, default=256, help="context frames kept (--start A)"
    )
    add_revisit_flags(p)
    p.set_defaults(func=run_baseline)
