"""``millivid generate``: roll out the rest of a video from context frames and actions."""

from __future__ import annotations

import argparse
from pathlib import Path

from millivid.cli.common import add_bf16_flag, add_device_flag, positive_int
from millivid.data.videos import load_video, read_npy
from millivid.pipeline import load
from millivid.rollout.generate import generate
from millivid.rollout.request import GenerateRequest, world_video


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate a long video from context frames (a video file or a world seed)",
        description="Writes OUT.npz, OUT.mp4 (ground truth | generated) and OUT_plan.png; "
        "re-running with the same --out resumes from the saved latents.",
    )
    p.add_argument(
        "--ckpt", type=Path, required=True, help="video-model run (millivid video train)"
    )
    p.add_argument(
        "--ae",
        type=Path,
        help="autoencoder run (default: CKPT/ae, else CKPT/../ae, else the shipped mini one "
        "for a mini model)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", type=Path, help="context video .npz (video + actions)")
    src.add_argument("--seed", type=int, help="render this world seed as ground truth")
    p.add_argument("--context", type=positive_int, default=256, help="ground-truth context frames")
    p.add_argument("--frames", type=positive_int, default=768, help="frames to generate")
    p.add_argument(
        "--method", help="the checkpoint's method (default: read from it; another is refused)"
    )
    p.add_argument(
        "--steps", type=positive_int, help="DDIM steps per rollout step (default: config, 50)"
    )
    p.add_argument(
        "--cfg",
        type=float,
        help="classifier-free guidance scale, 1 = off (default: the model's diffusion.guidance)",
    )
    p.add_argument(
        "--context-noise",
        type=float,
        help="noise the generated coarse context to this diffusion time in [0, 1] (default: the "
        "model's diffusion.sample_context_noise)",
    )
    p.add_argument(
        "--eta",
        type=float,
        help="DDIM eta in [0, 1]: 0 deterministic (the paper's), 1 DDPM steps (default: the "
        "model's diffusion.sample_eta)",
    )
    p.add_argument(
        "--actions",
        type=Path,
        help=".npy of int actions replacing the video's (0 forward, 1 left, 2 right, 3 none)",
    )
    p.add_argument("--no-kv-reuse", action="store_true", help="recompute the context every step")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="run the model under torch.compile (default: on CUDA)",
    )
    add_bf16_flag(p)
    p.add_argument("--sample-seed", type=int, default=0, help="noise seed")
    p.add_argument("--out", type=Path, required=True, help="output path without extension")
    add_device_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    pipe = load(args.ckpt, ae=args.ae, device=args.device)
    model, cfg, method, ae = pipe.model, pipe.cfg, pipe.method, pipe.ae
    if args.method and args.method != method:
        raise ValueError(f"--method {args.method} but {args.ckpt} was trained for {method!r}")
    if args.video:
        keys = ("video", "actions", "poses") if cfg.model.uses_poses else ("video", "actions")
        record = load_video(args.video, keys=keys)
    else:
        record = world_video(cfg, args.seed, args.context, args.frames)
    frames, actions = record.video, record.actions
    if args.actions:
        actions = read_npy(args.actions, "actions")
    req = GenerateRequest(
        frames=frames,
        actions=actions,
        poses=record.poses,
        context=args.context,
        length=args.frames,
        seed=args.sample_seed,
        steps=args.steps,
        guidance=args.cfg,
        context_noise=args.context_noise,
        eta=args.eta,
        reuse_context=False if args.no_kv_reuse else None,
        compile=args.compile,
        bf16=args.bf16,
    )
    paths = generate(req, model, cfg, method, ae, args.out, args.device, args.method)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
