"""``millivid weights fetch`` / ``millivid weights list``: the learned metrics' published weight
files in the weights folder (docs/EVALUATION.md)."""

from __future__ import annotations

import argparse

from millivid.weights.fetch import fetch_weights, weight_status
from millivid.weights.files import (
    DEFAULT_WEIGHTS_DIR,
    FETCH_GROUPS,
    WEIGHT_FILES,
    WEIGHTS_DIR_ENV,
    fetch_command,
    weights_dir,
)

DIR_HELP = f"weights folder (default: ${WEIGHTS_DIR_ENV}, else {DEFAULT_WEIGHTS_DIR})"


def run_fetch(args: argparse.Namespace) -> int:
    folder = weights_dir(args.dir)
    print(f"weights folder: {folder}")
    fetch_weights(args.names or ["all"], folder, not args.no_progress, lambda r: print(r.line()))
    return 0


def run_list(args: argparse.Namespace) -> int:
    folder = weights_dir(args.dir)
    print(f"weights folder: {folder}")
    rows = weight_status(folder)
    for name, path, state in rows:
        print(f"{name:9s} {path.name:27s} {state}")
    missing = [name for name, _, state in rows if state == "missing"]
    if missing:
        print(f"fetch the missing files with: {fetch_command(missing, folder)}")
    return 0


def register(subparsers) -> None:
    w = subparsers.add_parser(
        "weights",
        help="download and check the learned metrics' published weight files",
        description="The learned metrics (lpips, dino, matches, fid, fvd) read published weight "
        "files from one folder; millivid evaluate looks there unless a --<name>-weights flag "
        "names a file.",
    )
    sub = w.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    choices = [*FETCH_GROUPS, "all", *(n for n in WEIGHT_FILES if n not in FETCH_GROUPS)]
    fetch = sub.add_parser(
        "fetch",
        help="download the published files, check their digests, skip those already present",
        description="Download each file from its official location into the weights folder, "
        "check it against the digest its publisher releases (files without a published "
        "digest are kept unverified, and their SHA-256 is printed), and write it atomically. "
        "A file already present with the right digest is not downloaded again.",
    )
    fetch.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"what to fetch: {', '.join(choices)} (lpips = alexnet + lpips files, lightglue = "
        "disk + lightglue files; none given: all)",
    )
    fetch.add_argument("--dir", help=DIR_HELP)
    fetch.add_argument("--no-progress", action="store_true", help="no progress bars")
    fetch.set_defaults(func=run_fetch)
    listing = sub.add_parser(
        "list",
        help="each weight file in the weights folder: missing, or its digest and whether it "
        "is the published one",
    )
    listing.add_argument("--dir", help=DIR_HELP)
    listing.set_defaults(func=run_list)
