"""``millivid data make`` (render a resumable dataset), ``millivid data import`` (convert a folder of
videos into one) and ``millivid data check`` (validate one)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from millivid.cli.common import (
    add_device_flag,
    add_preset_flags,
    config_from_args,
    positive_int,
)
from millivid.data.dataset import check_dataset
from millivid.data.import_videos import import_videos
from millivid.data.make import candidate_count, make_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` with its ``make``, ``import`` and ``check`` subcommands."""
    data = subparsers.add_parser("data", help="video datasets on disk")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    _register_make(sub)
    _register_import(sub)

    check = sub.add_parser(
        "check",
        help="read and validate every video of a dataset folder",
        description="Fully read every video; print each bad file with the reason; exit 1 if any.",
    )
    check.add_argument("dir", help="dataset folder")
    check.add_argument(
        "--format",
        default="auto",
        help="auto | millivid | teco-npz | teco-mp4 (dfot) | mp4",
    )
    check.set_defaults(func=run_check)


def _register_make(sub: argparse._SubParsersAction) -> None:
    """Add ``data make``."""
    make = sub.add_parser(
        "make",
        help="render world videos into a dataset folder (resumable)",
        description="Render N world videos into DIR/<shard>/<index>.npz plus DIR/dataset.json. "
        "Rerun the same command to resume after an interruption.",
    )
    make.add_argument(
        "--videos", type=positive_int, required=True, help="videos to write (kept, with --test)"
    )
    make.add_argument("--out", required=True, help="dataset folder")
    add_device_flag(make)
    make.add_argument(
        "--test",
        action="store_true",
        help="test set (paper A.1): test seeds, A.1 actions, keep the largest distance covered",
    )
    make.add_argument(
        "--keep-fraction",
        type=float,
        default=0.1,
        help="--test: fraction of candidates kept (paper 0.1: 10,000 -> 1,000)",
    )
    make.add_argument(
        "--candidates",
        type=positive_int,
        default=None,
        help="--test: candidates (default ceil(videos / keep-fraction))",
    )
    make.add_argument(
        "--first-seed", type=int, default=0, help="first seed (offset in the namespace)"
    )
    make.add_argument(
        "--frames", type=positive_int, default=None, help="frames per video (default: preset)"
    )
    make.add_argument(
        "--size", type=positive_int, default=None, help="frame size (default: preset)"
    )
    make.add_argument(
        "--batch", type=positive_int, default=None, help="videos rendered at once (default: auto)"
    )
    make.add_argument("--shard-size", type=positive_int, default=256, help="videos per sub-folder")
    make.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="file-writing threads, and processes choosing A.1 actions (at most one per core) "
        "when 4 or more (default: min(8, cores))",
    )
    make.add_argument(
        "--no-side-outputs", action="store_true", help="leave out the per-pixel labels and depth"
    )
    make.add_argument(
        "--store", action="store_true", help="write uncompressed npz (faster, larger)"
    )
    add_preset_flags(make)
    make.set_defaults(func=run_make)


def _register_import(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser(
        "import",
        help="convert a folder of videos (mp4, npz, TECO, DFoT) into a dataset folder (resumable)",
        description="Convert every video under SRC (recursively) into DIR/<same path>.npz plus "
        "DIR/dataset.json, the dataset that `ae train`, `ae encode` and the clip sampler read. "
        "Rerun the same command to resume after an interruption. See docs/DATA.md.",
    )
    imp.add_argument("src", metavar="SRC", help="folder of videos")
    imp.add_argument("--out", required=True, metavar="DIR", help="dataset folder (outside SRC)")
    imp.add_argument(
        "--format",
        default="auto",
        choices=("auto", "mp4", "npz", "teco", "dfot"),
        help="mp4: video files, no actions; npz: millivid-style npz; teco: TECO npz; "
        "dfot: TECO/DFoT mp4 + actions beside them",
    )
    imp.add_argument(
        "--size",
        type=positive_int,
        default=None,
        help="centre-crop every frame to a square and resize it to SIZE x SIZE "
        "(default: keep the frames, which must then be square and of one size)",
    )
    imp.add_argument(
        "--actions",
        default=None,
        metavar="FILE",
        help='JSON {"<video path relative to SRC>": [action per frame], ...} replacing every '
        "video's actions (ids 0 forward, 1 left, 2 right, 3 none); default: the source's "
        "actions, else 3 (none) on every frame",
    )
    imp.add_argument("--store", action="store_true", help="write uncompressed npz (faster reads)")
    imp.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="videos converted at once (default: min(8, cores))",
    )
    imp.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    """Convert the videos; an interrupted run is resumed by running it again."""
    start = time.perf_counter()
    try:
        meta = import_videos(
            args.src,
            args.out,
            fmt=args.format,
            size=args.size,
            actions_file=args.actions,
            compress=not args.store,
            workers=args.workers,
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted: rerun the same command to resume {args.out}", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - start
    actions = (
        f"from {meta['actions']}"
        if meta["actions"] != "source"
        else f"from the source ({meta['null_action']}, none, for videos without)"
    )
    print(
        f"dataset: {meta['videos']} videos ({meta['source_format']}) at {meta['size']}x"
        f"{meta['size']} in {args.out} ({seconds:.1f} s this run); actions {actions}"
    )
    return 0


def run_make(args: argparse.Namespace) -> int:
    """Render the dataset; an interrupted run is resumed by running it again."""
    cfg = config_from_args(args).world
    changes = {k: v for k, v in (("frames", args.frames), ("size", args.size)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes)
    candidates = args.candidates
    if args.test and candidates is None:
        candidates = candidate_count(args.videos, args.keep_fraction)
    start = time.perf_counter()
    try:
        meta = make_dataset(
            args.out,
            cfg,
            args.videos,
            test=args.test,
            candidates=candidates,
            first_seed=args.first_seed,
            device=args.device,
            batch=args.batch,
            shard_size=args.shard_size,
            side_outputs=not args.no_side_outputs,
            compress=not args.store,
            workers=args.workers,
            preset=args.preset,
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted: rerun the same command to resume {args.out}", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - start
    frames = meta["videos"] * meta["frames"]
    print(
        f"{meta['split']} dataset: {meta['videos']} videos x {meta['frames']} frames at "
        f"{meta['size']}x{meta['size']} in {args.out} ({seconds:.1f} s this run)"
    )
    print(f"frames total: {frames}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Validate every file; one line per bad file; exit code 1 if any is bad."""
    checked, bad = check_dataset(args.dir, format=args.format)
    for _, reason in bad:
        print(f"BAD {reason}")
    print(f"checked {checked} videos in {args.dir}: {len(bad)} bad")
    return 1 if bad else 0
