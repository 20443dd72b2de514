"""Flags shared by several subcommands (preset + overrides)."""

from __future__ import annotations

import argparse
from pathlib import Path

from millivid.presets import PRESET_NAMES, Config, load_preset


def add_preset_flags(parser: argparse.ArgumentParser, default: str = "mini") -> None:
    """``--preset NAME`` and repeatable ``--set key.sub=value``."""
    parser.add_argument("--preset", default=default, choices=PRESET_NAMES, help="named config")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.depth=4 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """The preset named on the command line with its overrides applied."""
    return load_preset(args.preset, args.overrides)


def add_resume_flags(parser: argparse.ArgumentParser) -> None:
    """``--resume``, ``--resume-from DIR`` and ``--continuation DIR`` of a training command."""
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (with more steps: raise the preset's *.steps)",
    )
    parser.add_argument(
        "--resume-from",
        type=Path,
        metavar="DIR",
        help="continue from the continuation state in DIR (see --continuation), or from the "
        "checkpoint in --out if that is as far along",
    )
    parser.add_argument(
        "--continuation",
        type=Path,
        metavar="DIR",
        help="also write a small continuation state (bf16 weights, EMA and optimizer moments, "
        "step, config, log tail; files <= 16 MiB) into DIR with every checkpoint and at exit",
    )
