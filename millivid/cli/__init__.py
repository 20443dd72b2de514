"""The ``millivid`` command. Thin: each subcommand module parses its flags and calls the library.

A subcommand module exposes ``register(subparsers)``, which adds its parser(s) and sets
``func`` to a callable taking the parsed ``argparse.Namespace`` and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys

from millivid.cli.common import CommandParser
from millivid.typed_config import ConfigError

# One module per stage of the data flow; a module that fails to import is a bug, not optional.
SUBCOMMAND_MODULES = (
    "world",
    "data",
    "plan",
    "autoencoder",
    "video",
    "generate",
    "evaluate",
    "weights",
    "baseline",
    "reproduce",
    "demo",
)


def package_version() -> str:
    """The installed distribution's version, else (running from a checkout) ``__version__``."""
    try:
        return importlib.metadata.version("millivid")
    except importlib.metadata.PackageNotFoundError:
        from millivid import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand registered; every parser in it
    is a ``CommandParser``, so every ``--help`` shows the defaults."""
    parser = CommandParser(
        prog="millivid",
        description="Long-range-consistent video generation with hierarchical latents and "
        "coarse-to-fine diffusion rollout.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"millivid.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"millivid.cli.{name}":
                continue  # this subcommand is not written yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``millivid`` console script and ``python -m millivid``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # the command line as given, for a command that relaunches itself (reproduce --gpus)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"millivid {args.command}: error: {err}", file=sys.stderr)
        return 1
