"""What every subcommand shares: the parser class (help with defaults) and common flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from millivid.device import resolve_device, unavailable_device
from millivid.presets import PRESET_NAMES, Config, load_preset
from millivid.train.continuation import KEEP


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` ends each option's line with its default, except where there is nothing to
    say (no default, an off switch, an empty list) or the help text already states it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        default = action.default
        if (
            default is None
            or default is False
            or default in ([], "")
            or "default" in help_text.lower()
        ):
            return help_text
        return super()._get_help_string(action) or ""


class CommandParser(argparse.ArgumentParser):
    """The parser of ``millivid`` and, through ``add_subparsers``, of every subcommand: the one
    place that sets how ``--help`` looks."""

    def __init__(self, *args, formatter_class=DefaultsHelpFormatter, **kwargs) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def device_name(text: str) -> str:
    """``--device`` value -> the device it means here (``auto``: cuda when there is one, else
    cpu; a bare ``cuda`` gets this process's index); a device this machine lacks is a usage
    error naming the ones it has."""
    try:
        dev = resolve_device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a torch device: use auto, cpu, cuda, cuda:N, ..."
        ) from None
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if dev.type == "cuda" and dev.index >= (count := torch.cuda.device_count()):
        err = unavailable_device(text, f"GPU {dev.index} asked for, {count} GPU(s) here")
        raise argparse.ArgumentTypeError(str(err))
    return str(dev)


def positive_int(text: str) -> int:
    """argparse ``type=`` of a count or size: an integer >= 1 (``--size 0`` is a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_int_list(text: str) -> tuple[int, ...]:
    """argparse ``type=`` of a comma list of integers >= 1, e.g. ``64,256,768``."""
    values = []
    for part in text.split(","):
        try:
            value = int(part)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers >= 1 (e.g. 64,256,768), got {text!r} "
                f"({part.strip()!r} is not one)"
            )
        values.append(value)
    return tuple(values)


def output_file(*suffixes: str) -> Callable[[str], Path]:
    """argparse ``type=`` of a picture written in the format its suffix names: a Path ending in
    one of ``suffixes`` (``--png plan`` is a usage error, not a late "format not supported")."""

    def parse(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"{text!r}: the file name must end in {' or '.join(suffixes)} (its format)"
            )
        return path

    return parse


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    """``--device`` (default ``auto``), resolved while parsing: ``args.device`` is ``cpu``,
    ``cuda:0``, ..."""
    parser.add_argument(
        "--device",
        default="auto",
        type=device_name,
        help="torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:1, ...",
    )


def add_bf16_flag(parser: argparse.ArgumentParser) -> None:
    """``--bf16`` / ``--no-bf16``: the video model under bf16 autocast (``args.bf16``; None: the
    default, on CUDA only)."""
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        help="run the video model under bf16 autocast (default: on CUDA; on a CPU with bf16 "
        "units, AVX512-BF16 or AMX, faster too, frames within rounding of float32)",
    )


def add_preset_flags(
    parser: argparse.ArgumentParser, default: str | None = "mini", help: str = "named config"
) -> None:
    """``--preset NAME`` and repeatable ``--set key.sub=value``; ``help`` says what a ``None``
    default means."""
    parser.add_argument("--preset", default=default, choices=PRESET_NAMES, help=help)
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
    """``--resume``, ``--overwrite``, ``--resume-from DIR``, ``--continuation DIR`` and
    ``--continuation-keep`` of a training command."""
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (with more steps: raise the preset's *.steps)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in an --out that already holds a run, replacing its checkpoint and "
        "metrics.jsonl (without it, or --resume, such an --out is refused)",
    )
    parser.add_argument(
        "--resume-from",
        type=Path,
        metavar="DIR",
        help="continue from the continuation state in DIR (see --continuation), or from the "
        "checkpoint in --out if that is as far along",
    )
    add_continuation_flags(
        parser,
        "also write a small continuation state (bf16 weights, EMA and optimizer moments, step, "
        "config, log tail; files <= 16 MiB) into DIR with every checkpoint and at exit",
    )


def add_continuation_flags(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--continuation DIR`` (``help_text``: what is written there) and
    ``--continuation-keep {all,model}``: what the continuation state keeps."""
    parser.add_argument("--continuation", type=Path, metavar="DIR", help=help_text)
    parser.add_argument(
        "--continuation-keep",
        choices=KEEP,
        default="all",
        help="what the continuation state keeps: all, or model (the bf16 weights alone, about "
        "a third of the size; a run going on from it starts the EMA again from the weights, "
        "with its warmup, and the optimizer moments from zero)",
    )
