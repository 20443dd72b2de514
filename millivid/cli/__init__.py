"""The ``millivid`` command. Thin: each subcommand module parses its flags and calls the library.

A subcommand module exposes ``register(subparsers)``, which adds its parser(s) and sets
``func`` to a callable taking the parsed ``argparse.Namespace`` and returning an exit code.
An anticipated error (``user_error_line``) ends in one line on stderr, not a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.metadata
import json
import os
import re
import signal
import sys
import zipfile

from millivid import __version__
from millivid.cli.common import CommandParser
from millivid.nn import SDPA_BACKENDS, attention_kernel

# One module per stage of the data flow; a module that fails to import is a bug, not optional.
SUBCOMMAND_MODULES = (
    "config",
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

DEBUG_ENV = "MILLIVID_DEBUG"
SDPA_ENV = "MILLIVID_SDPA"

# what to do after an interruption, for the commands that keep their work (the others start over)
RESUME_HINTS = {
    "generate": "rerun the same command to resume",
    "demo": "rerun the same command to resume",
    "reproduce": "rerun the same command to resume",
    "ae encode": "rerun the same command to resume",
    "ae train": "rerun it with --resume to continue from the saved step",
    "video train": "rerun it with --resume to continue from the saved step",
}

# what to do about an OSError, by errno
OS_ERROR_HINTS = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "move it away or choose another path",
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EROFS: "write elsewhere",
}


def package_version() -> str:
    """The installed distribution's version, else (running from a checkout) ``__version__``."""
    try:
        return importlib.metadata.version("millivid")
    except importlib.metadata.PackageNotFoundError:
        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand registered; every parser in it
    is a ``CommandParser``, so every ``--help`` shows the defaults."""
    parser = CommandParser(
        prog="millivid",
        description="Long-range-consistent video generation with hierarchical latents and "
        "coarse-to-fine diffusion rollout.",
        epilog="An error ends in one line that names the file, key or flag and what to do; "
        f"--debug (or {DEBUG_ENV}=1) shows the full traceback instead. Ctrl-C or SIGTERM "
        "stop a command with exit code 130.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an error, show the full Python traceback instead of one line (also "
        f"{DEBUG_ENV}=1); give it before the command: millivid --debug generate ...",
    )
    parser.add_argument(
        "--sdpa",
        choices=tuple(SDPA_BACKENDS),
        default=None,
        help="the attention kernel every model uses (default: auto, PyTorch's choice; also "
        f"{SDPA_ENV}=NAME); where it cannot take the inputs (flash and cudnn need half "
        "precision and a CUDA GPU, efficient a CUDA GPU) the math kernel runs; give it before "
        "the command",
    )
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
    """Entry point of the ``millivid`` console script and ``python -m millivid``.

    An anticipated error (a bad or missing file, flag, key or config value; a full disk) prints
    one line and returns 1; ``--debug`` or ``MILLIVID_DEBUG=1`` re-raise it instead. Run as the
    program (``argv`` None), Ctrl-C and SIGTERM print one line and return 130; called from Python
    with ``argv``, the KeyboardInterrupt reaches the caller, who may want to stop too."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # the command line as given, for a command that relaunches itself (reproduce --gpus)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    command = command_words(args)
    try:
        with attention_kernel(sdpa_choice(args)):
            return int(args.func(args) or 0)
    except KeyboardInterrupt as err:
        if debug or argv is not None:
            raise
        print(stop_line(command, err), file=sys.stderr)
        return 130
    except Exception as err:
        line = user_error_line(err)
        if debug or line is None:
            raise
        print(f"{command}: error: {line}", file=sys.stderr)
        return 1


def sdpa_choice(args: argparse.Namespace) -> str:
    """The attention kernel of this command: ``--sdpa``, else ``MILLIVID_SDPA``, else auto."""
    name = args.sdpa or os.environ.get(SDPA_ENV) or "auto"
    if name not in SDPA_BACKENDS:
        raise ValueError(f"{SDPA_ENV}={name!r}: expected one of {', '.join(SDPA_BACKENDS)}")
    return name


def command_words(args: argparse.Namespace) -> str:
    """``millivid ae train``: the words naming the command that ran, to start its messages."""
    action = getattr(args, f"{args.command}_command", None)
    return " ".join(w for w in ("millivid", args.command, action) if w)


def stop_line(command: str, err: KeyboardInterrupt) -> str:
    """``millivid generate: stopped (Ctrl-C): rerun the same command to resume``."""
    # the trainer's and the rollout's stop says "stopped between steps on signal 15"
    reason = str(err).removeprefix("stopped ") or "Ctrl-C"
    reason = re.sub(r"signal (\d+)", lambda m: signal.Signals(int(m[1])).name, reason)
    hint = RESUME_HINTS.get(command.removeprefix("millivid "))
    return f"{command}: stopped ({reason})" + (f": {hint}" if hint else "")


def user_error_line(err: Exception) -> str | None:
    """The one-line message of an anticipated error, or None for a bug (shown as a traceback).

    Library errors are ValueErrors (ConfigError, VideoFileError, ...) whose message names the
    file, key or flag; OSErrors name their file; a corrupt .npz (BadZipFile) is named from the
    zip being opened; a JSON parse error cannot say which file it was."""
    if isinstance(err, json.JSONDecodeError):
        return (
            f"a JSON file is not valid JSON ({err}): it may be truncated or hand-edited; run "
            "with --debug to see which file, then fix or delete it"
        )
    if isinstance(err, UnicodeDecodeError):
        return (
            f"a text file is not UTF-8 text ({err}): run with --debug to see which file, then "
            "fix or delete it"
        )
    if isinstance(err, OSError):
        hint = OS_ERROR_HINTS.get(err.errno)
        if err.filename is None:
            return str(err)
        where = err.filename2 or err.filename  # a rename's target, not its temporary file
        return f"{where}: {err.strerror or err}" + (f": {hint}" if hint else "")
    if isinstance(err, zipfile.BadZipFile):
        where = zip_file_name(err) or "an .npz file"
        return f"{where}: not a readable .npz (truncated or corrupt: {err}): delete or re-create it"
    if isinstance(err, ValueError):
        return str(err)
    torch = sys.modules.get("torch")  # not imported: the error cannot be torch's
    if torch is not None and isinstance(err, torch.cuda.OutOfMemoryError):
        said = ". ".join(str(err).split(". ")[:2])  # "CUDA out of memory. Tried to allocate X"
        return (
            f"out of GPU memory ({said}): use a smaller batch or fewer frames at once, or "
            "another --device"
        )
    return None


def zip_file_name(err: BaseException) -> str | None:
    """The file a ``zipfile.ZipFile`` was opening when ``err`` was raised (np.load of an .npz
    goes through one), from the traceback; None if there was none."""
    tb, name = err.__traceback__, None
    while tb is not None:
        zf = tb.tb_frame.f_locals.get("self")
        if isinstance(zf, zipfile.ZipFile) and getattr(zf, "filename", None):
            name = zf.filename
        tb = tb.tb_next
    return name
