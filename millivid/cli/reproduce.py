"""``millivid reproduce``: the resumable Table-1 pipeline (see millivid/reproduce.py)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from millivid.cli.common import (
    add_continuation_flags,
    add_device_flag,
    add_preset_flags,
    config_from_args,
)
from millivid.presets import REPRODUCE_PRESETS
from millivid.reproduce import STAGES, reproduce
from millivid.variants import VARIANTS


def preset_values(key: str) -> str:
    """``(default: the preset's: tiny 6, mini 1024, paper 10000)``: a ReproduceConfig value of
    every preset, or the one value all presets share, for a flag's help."""
    values = {name: getattr(rcfg, key) for name, rcfg in REPRODUCE_PRESETS.items()}
    if len(set(values.values())) == 1:
        value = next(iter(values.values()))
        return f"(default: {','.join(value) if isinstance(value, tuple) else value})"
    return "(default: the preset's: " + ", ".join(f"{n} {v}" for n, v in values.items()) + ")"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="world data -> autoencoder -> latents -> video models -> rollouts -> eval -> report",
        description="Run or continue the whole reproduction into --out. Every stage is skipped "
        "once its output is complete, so re-running the same command (e.g. under `timeout`) "
        "continues where it stopped. Wall seconds per stage go to OUT/stages.json.",
    )
    add_preset_flags(p, default="mini")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--ae", type=Path, help="use this autoencoder (e.g. checkpoints/mini/ae)")
    p.add_argument(
        "--variants", help=f"comma list of {', '.join(VARIANTS)} {preset_values('variants')}"
    )
    p.add_argument("--stages", help=f"comma list of {', '.join(STAGES)} (default: all)")
    p.add_argument(
        "--train-videos", type=int, help=f"training videos {preset_values('train_videos')}"
    )
    p.add_argument("--test-videos", type=int, help=f"test videos {preset_values('test_videos')}")
    p.add_argument(
        "--context", type=int, help=f"ground-truth context frames {preset_values('context')}"
    )
    p.add_argument(
        "--frames", type=int, help=f"generated frames per test video {preset_values('frames')}"
    )
    p.add_argument(
        "--rollout-batch",
        type=int,
        help=f"test videos rolled out together {preset_values('rollout_batch')}",
    )
    _add_rollout_flags(p)
    p.add_argument(
        "--metrics", help="evaluation metrics (default psnr,ssim,sharpness,probe,action)"
    )
    p.add_argument(
        "--workers",
        type=int,
        help="world-writing threads (and A.1 action-choosing processes, one per core, when 4 "
        "or more) and "
        "latent-encoding reader processes (default: min(8, CPU cores) and min(4, CPU cores))",
    )
    p.add_argument("--store", action="store_true", help="write uncompressed videos (faster)")
    p.add_argument(
        "--gpus",
        type=int,
        default=1,
        help="train the video models on this many GPUs of this machine (torchrun + DDP; "
        "video_train.batch_size is per GPU); the other stages run on one",
    )
    add_continuation_flags(
        p,
        "each video model also writes a small continuation state (bf16 weights, EMA and "
        "optimizer moments; files <= 16 MiB) into DIR/<variant> with every checkpoint and at "
        "exit, and goes on from the one there when it is further along than --out's run: a "
        "long training in pieces on machines that keep nothing but DIR",
    )
    add_device_flag(p)
    p.set_defaults(func=run)


def _add_rollout_flags(p: argparse.ArgumentParser) -> None:
    """The rollouts' sampler settings (each defaults to the model's own)."""
    p.add_argument("--sample-steps", type=int, help="DDIM steps (default: diffusion.sample_steps)")
    p.add_argument(
        "--sample-context-noise",
        type=float,
        help="noise the generated coarse context to this time in rollouts (default: each "
        "model's diffusion.sample_context_noise)",
    )
    p.add_argument(
        "--sample-eta",
        type=float,
        help="DDIM eta of the rollouts in [0, 1]: 0 deterministic, 1 DDPM steps (default: each "
        "model's diffusion.sample_eta)",
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="roll out under torch.compile (default: on CUDA)",
    )


def video_stage_command(argv: list[str], gpus: int) -> list[str]:
    """``torchrun`` running this reproduce command's video stage alone on ``gpus`` processes:
    ``argv`` without --gpus and --stages, then ``--stages video``."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--gpus", "--stages"):
            skip = True
        elif not arg.startswith(("--gpus=", "--stages=")):
            kept.append(arg)
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={gpus}", "-m", "millivid", *kept, "--stages", "video",
    ]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    rcfg = REPRODUCE_PRESETS[args.preset]
    updates = {
        "train_videos": args.train_videos,
        "test_videos": args.test_videos,
        "context": args.context,
        "frames": args.frames,
        "rollout_batch": args.rollout_batch,
        "sample_steps": args.sample_steps,
        "sample_context_noise": args.sample_context_noise,
        "sample_eta": args.sample_eta,
        "compile": args.compile,
        "metrics": args.metrics,
        "workers": args.workers,
        "compress": False if args.store else None,
        "variants": tuple(args.variants.split(",")) if args.variants else None,
        "stages": tuple(args.stages.split(",")) if args.stages else None,
    }
    rcfg = replace(rcfg, **{k: v for k, v in updates.items() if v is not None})
    if args.gpus < 1:
        raise ValueError(f"--gpus {args.gpus}: give at least 1")
    stages = rcfg.stages or STAGES
    if args.gpus > 1 and "video" in stages:
        i = stages.index("video")
        if stages[:i]:
            reproduce(
                args.out, cfg, replace(rcfg, stages=stages[:i]), ae=args.ae, device=args.device
            )
        command = video_stage_command(args.argv, args.gpus)
        if subprocess.run(command).returncode:
            raise ValueError(
                f"the video stage on {args.gpus} processes failed: {' '.join(command)}"
            )
        rcfg = replace(rcfg, stages=stages[i + 1 :])
        if not rcfg.stages:
            return 0
    states, keep = args.continuation, args.continuation_keep
    report = reproduce(
        args.out, cfg, rcfg, ae=args.ae, device=args.device, states=states, states_keep=keep
    )
    print(f"report: {report}")
    print(f"table: {args.out / 'eval' / 'table.md'}")
    print(f"stage times: {args.out / 'stages.json'}")
    return 0
