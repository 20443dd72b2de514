"""``millivid demo``: the README's main job on its small built-in default.

With the shipped mini models (checkpoints/mini/) it renders a held-out world video and rolls
out its continuation with millivid: 256 ground-truth frames, then on the CPU 256 generated with
16 DDIM steps, on a GPU the paper's horizon of 768 with 50 steps. OUT is a run folder as
``millivid reproduce`` writes one: ``gt/``, ``rollouts/<method>/`` (npz; mp4 of ground truth |
generated, upscaled, captioned, context and generated frames marked and counted), the trivial
baselines in ``rollouts/{copy-last,context-mean,nearest-pose}/`` (``millivid baseline``),
``plans/``, ``eval/`` (PSNR/SSIM by horizon for the model and the baselines, curves) and
``report.html``. The last line printed is the JSON summary: the model's ``horizons`` and, under
``baselines``, each baseline's. Without the models it renders a world video only, saying why.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

from millivid.cli.common import add_bf16_flag, add_device_flag, add_preset_flags, config_from_args
from millivid.cli.world import render_to_files
from millivid.data.videos import save_video
from millivid.device import resolve_device
from millivid.evaluate.baselines import BASELINES, write_baselines
from millivid.evaluate.outputs import write_set_outputs
from millivid.evaluate.report import build_report
from millivid.evaluate.runner import evaluate_sets
from millivid.evaluate.suite import MetricSuite
from millivid.pipeline import load
from millivid.presets import EVAL_PRESETS
from millivid.rollout.generate import generate
from millivid.rollout.request import GenerateRequest, world_video
from millivid.world import TEST_SEED_OFFSET

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "checkpoints" / "mini"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the main job on a small built-in default",
        description="Roll out a held-out world video with the shipped mini millivid model "
        "(or, without it, render a world video) and print where the outputs were written.",
    )
    add_preset_flags(
        parser,
        default=None,
        help="named config (default: the model's own; mini with --render-only)",
    )
    parser.add_argument(
        "--ckpt", type=Path, help="video model (default: the shipped checkpoints/mini/millivid)"
    )
    parser.add_argument(
        "--ae", type=Path, help="autoencoder (default: the shipped checkpoints/mini/ae)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="world seed, as in `generate --seed` and `world render --seed` (default: "
        "1,000,000,000, the first held-out test world; lower seeds are training worlds)",
    )
    parser.add_argument("--context", type=int, default=256, help="ground-truth frames")
    parser.add_argument(
        "--frames", type=int, default=None, help="frames to generate (default: CPU 256, GPU 768)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="DDIM steps per rollout step (default: CPU 16, GPU 50)",
    )
    add_bf16_flag(parser)
    parser.add_argument("--render-only", action="store_true", help="only render a world video")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    add_device_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for flag, value in (
        ("--frames", args.frames),
        ("--steps", args.steps),
        ("--context", args.context),
    ):
        if value is not None and value < 1:
            raise ValueError(f"{flag} {value}: give at least 1")
    given = [p for p in (args.ckpt, args.ae) if p is not None and not p.exists()]
    if given and not args.render_only:  # a model asked for by name must be there
        raise FileNotFoundError(f"{given[0]} does not exist: give a trained model folder")
    args.ckpt = args.ckpt or SHIPPED / "millivid"
    args.ae = args.ae or SHIPPED / "ae"
    args.device = str(resolve_device(args.device))
    gpu = args.device.startswith("cuda")
    args.frames = args.frames or (768 if gpu else 256)
    args.steps = args.steps or (50 if gpu else 16)
    seed = TEST_SEED_OFFSET if args.seed is None else args.seed
    if seed < TEST_SEED_OFFSET:
        print(
            f"world seed {seed} is a training world (held-out worlds start at {TEST_SEED_OFFSET:,})"
        )
    missing = [p for p in (args.ckpt, args.ae) if not p.exists()]  # a checkout without models
    if args.render_only or missing:
        if missing and not args.render_only:
            print(f"no model at {missing[0]}: rendering a world video only")
        args.preset = args.preset or "mini"
        cfg = dataclasses.replace(config_from_args(args).world, frames=args.context + args.frames)
        render_to_files(seed, cfg, args.out / f"world_seed{seed}", args.device)
        return 0
    return _rollout(args, seed)


def _rollout(args: argparse.Namespace, seed: int) -> int:
    pipe = load(args.ckpt, ae=args.ae, device=args.device)  # checks the pair fits together
    model, cfg, method, ae = pipe.model, pipe.cfg, pipe.method, pipe.ae
    if (args.preset or cfg.preset) != cfg.preset or args.overrides:
        given = f"--preset {args.preset}" if args.preset else "--set"
        raise ValueError(
            f"{given}: a rollout uses the config the model was trained with ({cfg.preset} "
            f"preset, from {args.ckpt}); --preset and --set choose the world of --render-only "
            "only. Give --ckpt/--ae of a model trained with that config instead"
        )
    record = world_video(cfg, seed, args.context, args.frames)
    run, name = args.out, f"seed{seed}"
    (run / "gt").mkdir(parents=True, exist_ok=True)
    save_video(run / "gt" / f"{name}.npz", record)  # atomic, with poses, labels and depth
    req = GenerateRequest(
        record.video,
        record.actions,
        args.context,
        args.frames,
        steps=args.steps,
        poses=record.poses,
        bf16=args.bf16,
    )
    paths = generate(req, model, cfg, method, ae, run / "rollouts" / method / name, args.device)
    (run / "plans").mkdir(exist_ok=True)
    shutil.copy(paths["plan"], run / "plans" / f"{method}.png")
    ecfg = EVAL_PRESETS[cfg.preset]
    # what the model must beat; copies of context frames, no model
    write_baselines(run / "gt", run / "rollouts", BASELINES, args.context, ecfg, subfolders=True)
    res = evaluate_sets(
        run / "rollouts",
        run / "gt",
        args.context,
        ["psnr", "ssim"],
        ecfg,
        MetricSuite(ecfg, args.device),
        progress=False,
    )
    written = write_set_outputs(
        res, run / "eval", ecfg.horizon_names, start=args.context, horizon_ends=ecfg.horizon_ends
    )
    report = build_report(run, run / "report.html", max_frames=args.context + args.frames)
    for kind, path in {**paths, "table": written["table"], "report": report}.items():
        print(f"{kind}: {path}")
    baselines = {kind: res.horizons[kind] for kind in BASELINES}
    summary = {"method": method, "seed": seed, "horizons": res.horizons[method]}
    print(json.dumps({**summary, "baselines": baselines}))
    return 0
