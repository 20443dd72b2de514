"""Flags shared by several subcommands (preset + overrides)."""

from __future__ import annotations

import argparse

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
