"""``millivid demo``: the README's main job on its small built-in default.

With the shipped mini models (checkpoints/mini/) it renders a held-out world video and rolls
out its continuation with millivid on the CPU: 256 ground-truth frames, 256 generated, 16 DDIM
steps; it writes the mp4 (ground truth | generated), the npz, the plan picture and a small
PSNR summary by horizon. Without them it renders a world video only, saying why.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from millivid.cli.common import add_preset_flags, config_from_args

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "checkpoints" / "mini"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the main job on a small built-in default",
        description="Roll out a held-out world video with the shipped mini millivid model "
        "(or, without it, render a world video) and print where the outputs were written.",
    )
    add_preset_flags(parser, default="mini")
    parser.add_argument("--ckpt", type=Path, default=SHIPPED / "millivid-cc", help="video model")
    parser.add_argument("--ae", type=Path, default=SHIPPED / "ae", help="autoencoder")
    parser.add_argument("--seed", type=int, default=0, help="test-namespace world seed")
    parser.add_argument("--context", type=int, default=256, help="ground-truth frames")
    parser.add_argument("--frames", type=int, default=256, help="frames to generate")
    parser.add_argument("--steps", type=int, default=16, help="DDIM steps per rollout step")
    parser.add_argument("--render-only", action="store_true", help="only render a world video")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from millivid.world import TEST_SEED_OFFSET

    seed = TEST_SEED_OFFSET + args.seed  # never a training seed
    missing = [p for p in (args.ckpt, args.ae) if not p.exists()]
    if args.render_only or missing:
        from millivid.cli.world import render_to_files

        if missing and not args.render_only:
            print(f"no model at {missing[0]}: rendering a world video only")
        cfg = dataclasses.replace(config_from_args(args).world, frames=args.context + args.frames)
        render_to_files(seed, cfg, args.out / f"world_seed{seed}", args.device)
        return 0
    return _rollout(args, seed)


def _rollout(args: argparse.Namespace, seed: int) -> int:
    import json

    import numpy as np
    import torch

    from millivid.evaluate.config import PRESETS as EVAL_PRESETS
    from millivid.evaluate.horizons import horizon_means
    from millivid.evaluate.suite import MetricSuite
    from millivid.rollout.generate import (
        GenerateRequest,
        generate,
        load_ae,
        load_video_model,
        world_video,
    )

    model, cfg, method = load_video_model(args.ckpt, args.device)
    ae = load_ae(args.ae, args.device)
    frames, actions = world_video(cfg, seed, args.context, args.frames)
    req = GenerateRequest(frames, actions, args.context, args.frames, steps=args.steps)
    out = args.out / f"{method}_seed{seed}"
    paths = generate(req, model, cfg, method, ae, out, args.device)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    with np.load(paths["npz"]) as f:
        generated = torch.from_numpy(f["video"][args.context :])
    ecfg = EVAL_PRESETS[cfg.preset]
    truth = torch.from_numpy(frames[args.context :])
    per_frame = MetricSuite(ecfg, args.device).per_frame(["psnr", "ssim"], generated, truth)
    horizons = horizon_means(per_frame, ecfg.horizon_names, ecfg.horizon_ends)
    print(json.dumps({"method": method, "seed": seed, "horizons": horizons}))
    return 0
