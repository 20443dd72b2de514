"""``millivid video train``: train the video DiT of one method on a latent cache.

``millivid video train --method M --preset mini --latents DIR --out RUN [--set k=v ...]
[--resume | --resume-from STATE] [--continuation STATE] [--device auto]`` runs the shared
trainer (Muon/AdamW, warmup, clipping, EMA, bf16, DDP under torchrun, atomic checkpoints, exact
resume, continuation states) on ``millivid.jobs.video_task.VideoTask``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from millivid.cli.common import (
    add_device_flag,
    add_preset_flags,
    add_resume_flags,
    config_from_args,
    output_file,
)
from millivid.data.latent_cache import LatentCache
from millivid.jobs.video_task import VideoTask
from millivid.plan import METHODS
from millivid.rollout.generate import video_checkpoint_config
from millivid.train import train
from millivid.train.checkpoint import export_bf16
from millivid.train.curves import plot_training


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("video", help="train the video diffusion model")
    video_sub = parser.add_subparsers(dest="video_command", metavar="ACTION", required=True)
    train = video_sub.add_parser(
        "train",
        help="train the DiT of one method on encoded latents",
        description="Train the video DiT for one rollout method on a latent cache written by "
        "`millivid ae encode`. Every method shares this code path: a method is a plan "
        "plus a packing.",
    )
    train.add_argument(
        "--method", required=True, choices=list(METHODS), help="rollout method (docs/PLANS.md)"
    )
    add_preset_flags(train)
    train.add_argument("--latents", type=Path, required=True, help="latent cache directory")
    train.add_argument("--out", type=Path, required=True, help="run directory (checkpoints)")
    add_resume_flags(train)
    add_device_flag(train)
    train.add_argument(
        "--attention",
        choices=("full", "context-causal"),
        help="shorthand for --set model.attention=... (default: the preset's, full)",
    )
    train.set_defaults(func=run_train)
    export = video_sub.add_parser(
        "export", help="bf16 safetensors (EMA weights when present) + config of a run"
    )
    export.add_argument("--ckpt", type=Path, required=True, help="video-model run folder")
    export.add_argument("--out", type=Path, required=True, help="output folder")
    export.set_defaults(func=run_export)
    curves = video_sub.add_parser(
        "curves", help="plot the training curves of runs (their metrics.jsonl) into one figure"
    )
    curves.add_argument("runs", type=Path, nargs="+", help="run folders or metrics.jsonl files")
    curves.add_argument(
        "--out",
        type=output_file(".png", ".svg", ".pdf"),
        required=True,
        help="figure (.png, .svg or .pdf)",
    )
    curves.set_defaults(func=run_curves)


def run_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.attention:
        config = replace(config, model=replace(config.model, attention=args.attention))
    if not args.latents.is_dir():
        raise FileNotFoundError(f"--latents {args.latents}: no such latent cache directory")

    cache = LatentCache(args.latents)
    task = VideoTask(config, args.method, cache)
    saved = video_checkpoint_config(args.method, config, cache.autoencoder_digest)
    out = train(
        task,
        config.video_train,
        args.out,
        config=saved,
        resume=args.resume,
        resume_from=args.resume_from,
        continuation=args.continuation,
        continuation_keep=args.continuation_keep,
        device=args.device,
        overwrite=args.overwrite,
    )
    print(f"video model ({args.method}) checkpoint: {out}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    print(f"bf16 checkpoint: {export_bf16(args.ckpt, args.out)}")
    return 0


def run_curves(args: argparse.Namespace) -> int:
    logs = {(r.parent if r.is_file() else r).name: r for r in args.runs}
    print(f"training curves: {plot_training(logs, args.out)}")
    return 0
