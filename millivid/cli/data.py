"""``millivid data make`` (render a resumable dataset) and ``millivid data check`` (validate one)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from millivid.cli.common import add_device_flag, add_preset_flags, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` with its ``make`` and ``check`` subcommands."""
    data = subparsers.add_parser("data", help="video datasets on disk")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    make = sub.add_parser(
        "make",
        help="render world videos into a dataset folder (resumable)",
        description="Render N world videos into DIR/<shard>/<index>.npz plus DIR/dataset.json. "
        "Rerun the same command to resume after an interruption.",
    )
    make.add_argument(
        "--videos", type=int, required=True, help="videos to write (kept, with --test)"
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
        type=int,
        default=None,
        help="--test: candidates (default ceil(videos / keep-fraction))",
    )
    make.add_argument(
        "--first-seed", type=int, default=0, help="first seed (offset in the namespace)"
    )
    make.add_argument("--frames", type=int, default=None, help="frames per video (default: preset)")
    make.add_argument("--size", type=int, default=None, help="frame size (default: preset)")
    make.add_argument(
        "--batch", type=int, default=None, help="videos rendered at once (default: auto)"
    )
    make.add_argument("--shard-size", type=int, default=256, help="videos per sub-folder")
    make.add_argument("--workers", type=int, default=None, help="file-writing threads")
    make.add_argument(
        "--no-side-outputs", action="store_true", help="leave out the per-pixel labels and depth"
    )
    make.add_argument(
        "--store", action="store_true", help="write uncompressed npz (faster, larger)"
    )
    add_preset_flags(make)
    make.set_defaults(func=run_make)

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


def run_make(args: argparse.Namespace) -> int:
    """Render the dataset; an interrupted run is resumed by running it again."""
    from millivid.data.make import candidate_count, make_dataset

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
    from millivid.data.dataset import check_dataset

    checked, bad = check_dataset(args.dir, format=args.format)
    for _, reason in bad:
        print(f"BAD {reason}")
    print(f"checked {checked} videos in {args.dir}: {len(bad)} bad")
    return 1 if bad else 0
