"""``millivid demo``: the README's main job on its small built-in default."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from millivid.cli.common import add_preset_flags, config_from_args
from millivid.cli.world import render_to_files


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the main job on a small built-in default",
        description="Render a loopcraft-lite world video (npz + mp4 + trajectory plot) and print "
        "where it was written.",
    )
    add_preset_flags(parser, default="mini")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=256, help="video length")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = dataclasses.replace(config_from_args(args).world, frames=args.frames)
    render_to_files(args.seed, cfg, args.out / f"world_seed{args.seed}", args.device)
    return 0
