"""Does a video model's rollout depend on the attention kernel? The first rollout steps per SDPA
backend.

A rollout whose latents blow up in some batches and not in others, with the same inputs, points
at a kernel rather than at the model. This rolls out the first ``--frames`` frames of
``--videos`` held-out videos (rendered from test seeds, or the npz files of ``--videos-dir``,
e.g. a reproduce run's ``gt``) in batches of ``--batch``, ``--repeats`` times under each
scaled-dot-product-attention backend the device has (``math``, ``cudnn``, ``flash``,
``efficient``: the names of ``millivid --sdpa``; bf16 autocast on CUDA as in every rollout;
the float32 autoencoder falls back to math under ``flash`` and ``cudnn``),
and prints per backend how many batches exploded (the rollout's own check: NaN, inf or a
latent beyond ``LATENT_LIMIT``), the largest latent, the largest difference from the first
backend's latents (math by default) and between repeats of the same batch (a deterministic
kernel: 0). ``--compile`` runs each backend's model under torch.compile, as ``reproduce`` and
``generate`` do on a GPU.

    python benchmarks/rollout_backends.py --ckpt CKPT --videos-dir RUN/gt --videos 64 \\
        --batch 8 --repeats 3 --device cuda --compile
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import millivid  # noqa: E402
from millivid.data.videos import load_video  # noqa: E402
from millivid.nn import attention_kernel  # noqa: E402
from millivid.rollout.request import GenerateRequest  # noqa: E402
from millivid.rollout.resumable import rollout_latents  # noqa: E402
from millivid.world import TEST_SEED_OFFSET, make_videos  # noqa: E402

BACKENDS = ("math", "cudnn", "flash", "efficient")  # names of millivid.nn.SDPA_BACKENDS


def held_out_videos(args: argparse.Namespace, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames uint8 [N, context, H, W, 3], actions [N, T'], poses float32 [N, T', 5])."""
    total = args.context + args.frames
    if args.videos_dir is not None:
        paths = sorted(Path(args.videos_dir).glob("*.npz"))[: args.videos]
        if not paths:
            raise SystemExit(f"{args.videos_dir}: no .npz videos")
        records = [load_video(p, keys=("actions", "poses")) for p in paths]
        frames = np.stack([r.video[: args.context] for r in records])
        actions = np.stack([r.actions[:total] for r in records])
        poses = np.stack([r.poses[:total] for r in records]).astype(np.float32)
        return frames, actions, poses
    world = replace(cfg.world, frames=max(total, cfg.world.frames))  # A.1 choice: full length
    seeds = [TEST_SEED_OFFSET + i for i in range(args.videos)]
    videos = make_videos(seeds, world, test=True)
    return (
        videos.video[:, : args.context].numpy(),
        videos.actions.numpy(),
        videos.poses.numpy().astype(np.float32),
    )


def run_backend(name: str, args: argparse.Namespace, data) -> dict:
    """Every batch ``args.repeats`` times under one SDPA backend: exploded batches, the largest
    latent and the latents of the first repeat (None where a batch exploded)."""
    torch._dynamo.reset()  # a compiled model traces again under this backend
    pipe = millivid.load(args.ckpt, ae=args.ae, device=args.device)
    frames, actions, poses = data
    exploded, largest, first, spread = 0, 0.0, [], 0.0
    start = time.perf_counter()
    with attention_kernel(name):
        for repeat in range(args.repeats):
            for i in range(0, len(frames), args.batch):
                req = GenerateRequest(
                    frames=frames[i : i + args.batch],
                    actions=actions[i : i + args.batch],
                    context=args.context,
                    length=args.frames,
                    poses=poses[i : i + args.batch],
                    steps=args.steps,
                    compile=args.compile,
                )
                try:
                    lat = (
                        rollout_latents(
                            req,
                            pipe.model,
                            pipe.cfg,
                            pipe.method,
                            pipe.ae,
                            device=pipe.device,
                            progress=False,
                        )
                        .float()
                        .cpu()
                    )
                except ValueError as err:
                    if "latents" not in str(err):
                        raise
                    exploded, lat = exploded + 1, None
                if lat is not None:
                    largest = max(largest, float(lat.abs().max()))
                if repeat == 0:
                    first.append(lat)
                elif lat is not None and first[i // args.batch] is not None:
                    spread = max(spread, float((lat - first[i // args.batch]).abs().max()))
    return {
        "exploded": exploded,
        "batches": args.repeats * len(first),
        "largest": largest,
        "repeat_diff": spread,
        "first": first,
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="video-model run or checkpoint folder")
    parser.add_argument("--ae", default=None, help="autoencoder (default: found as millivid.load)")
    parser.add_argument("--videos-dir", help="npz videos (default: render test-seed videos)")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--frames", type=int, default=3, help="generated frames per video")
    parser.add_argument("--steps", type=int, default=16, help="DDIM steps per rollout step")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="SDPA backends to run, comma list (differences are taken from the first)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    pipe = millivid.load(args.ckpt, ae=args.ae, device=args.device)
    data = held_out_videos(args, pipe.cfg)
    print(
        f"{len(data[0])} videos, batches of {args.batch}, {args.repeats} repeats, "
        f"compile={args.compile}, device={pipe.device}",
        flush=True,
    )
    results, reference = {}, None
    names = args.backends.split(",")
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise SystemExit(f"--backends: unknown {', '.join(unknown)} (known: {', '.join(BACKENDS)})")
    for name in names:
        try:
            out = run_backend(name, args, data)
        except RuntimeError as err:  # the device has no such kernel for these inputs
            print(f"{name}: unavailable ({str(err).split('. ')[0]})", flush=True)
            continue
        if reference is None:
            reference = out["first"]
        diffs = [
            float((a - b).abs().max())
            for a, b in zip(out["first"], reference, strict=True)
            if a is not None and b is not None
        ]
        row = {k: out[k] for k in ("exploded", "batches", "largest", "repeat_diff", "seconds")}
        row["max_diff_vs_first"] = max(diffs) if diffs else None
        results[name] = row
        diff = "-" if row["max_diff_vs_first"] is None else f"{row['max_diff_vs_first']:.3g}"
        print(
            f"{name}: {row['exploded']}/{row['batches']} batches exploded, largest |latent| "
            f"{row['largest']:.3g}, max |difference| from {names[0]} {diff}, between repeats "
            f"{row['repeat_diff']:.3g} ({row['seconds']:.1f} s)",
            flush=True,
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "backends": results},
                indent=2,
                default=str,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
