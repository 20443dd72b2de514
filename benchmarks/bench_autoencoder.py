"""Autoencoder numbers: reconstruction quality per level, encode speed, and paper-preset step cost.

# quality of a trained run on held-out videos (PSNR/SSIM per level, encode frames/s)
python benchmarks/bench_autoencoder.py quality --ckpt RUN --data TESTDIR --device cuda
# parameter count, one training step's time and peak memory (random data, bf16)
python benchmarks/bench_autoencoder.py step --preset paper --batch 224 --device cuda
# mini training throughput, and the cost of the optional loss terms (--set like the CLI)
python benchmarks/bench_autoencoder.py step --preset mini --batch 256 --device cuda \
    --set ae.gradient_weight=0.1
# training variants of a small model on tiny-world frames, same data and seed (CPU: ~80 s per
# 1,000 one-level steps): ae config overrides, and steps=N / cooldown=F / lr=F, per variant
python benchmarks/bench_autoencoder.py compare --variants gradient_weight=0 gradient_weight=0.3 \
    all_levels=true steps=2500 --steps 1000 --seed 0
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from millivid.autoencoder.model import HierarchicalAutoencoder
from millivid.autoencoder.task import AutoencoderTask
from millivid.data.dataset import list_videos
from millivid.data.videos import load_video
from millivid.device import resolve_device
from millivid.evaluate.image_metrics import psnr, ssim
from millivid.jobs.autoencoder import load_autoencoder
from millivid.nn import count_parameters
from millivid.presets import load_preset
from millivid.train import build_optimizers


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def quality(args: argparse.Namespace) -> dict:
    model = load_autoencoder(args.ckpt, args.device)
    levels = model.cfg.levels
    scores = {f"level{lvl}": {"psnr": 0.0, "ssim": 0.0} for lvl in range(levels)}
    count, encode_seconds = 0, 0.0
    for path in list_videos(args.data)[: args.videos]:
        frames = torch.from_numpy(load_video(path, keys=("video",)).video[:: args.stride])
        for s in range(0, len(frames), args.batch):
            x = frames[s : s + args.batch].to(args.device)
            sync(args.device)
            t0 = time.perf_counter()
            latents = model.encode(x)
            sync(args.device)
            encode_seconds += time.perf_counter() - t0
            for lvl, z in enumerate(latents):
                out = model.decode(z, lvl)
                scores[f"level{lvl}"]["psnr"] += float(psnr(out, x).sum())
                scores[f"level{lvl}"]["ssim"] += float(ssim(out, x).sum())
            count += len(x)
    for s in scores.values():
        s["psnr"] /= count
        s["ssim"] /= count
    return {"frames": count, "encode_frames_per_s": count / encode_seconds, **scores}


def step(args: argparse.Namespace) -> dict:
    cfg = load_preset(args.preset, args.set)
    model = HierarchicalAutoencoder(cfg.ae).to(args.device)
    size = cfg.ae.image_size
    bank = torch.randint(0, 256, (args.batch * 4, size, size, 3), dtype=torch.uint8)
    task = AutoencoderTask(cfg.ae, bank, args.batch)
    optimizers = build_optimizers(model, cfg.ae_train)
    gen = torch.Generator().manual_seed(0)
    times = []
    for i in range(args.steps + 2):
        batch = task.batch(i, gen)
        sync(args.device)
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.device.startswith("cuda")):
            loss, _ = task.loss(model, batch, args.device)
        loss.backward()
        for o in optimizers:
            o.step()
            o.zero_grad(set_to_none=True)
        sync(args.device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else None
    ms = sorted(times[2:])[len(times[2:]) // 2] * 1e3
    return {
        "preset": args.preset,
        "overrides": args.set,
        "params_M": count_parameters(model, trainable=True) / 1e6,
        "batch": args.batch,
        "step_ms": ms,
        "frames_per_s": args.batch / ms * 1e3,
        "peak_memory_GiB": peak,
    }


def _variant(text: str) -> dict:
    """'k=v,k=v' -> overrides of the small model's ae config, and of ``steps``, ``cooldown``
    and ``lr``."""
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
        else:
            out[key] = int(value) if value.isdigit() else float(value)
    return out


def compare(args: argparse.Namespace) -> dict:
    """Train a small AE per variant (same seed and data); PSNR/SSIM per level on test frames."""
    import tempfile
    from dataclasses import replace
    from pathlib import Path

    from millivid.jobs.autoencoder import reconstruction_psnr
    from millivid.train import TrainConfig, load_checkpoint, load_weights_into, train
    from millivid.world import TEST_SEED_OFFSET, make_videos

    world = load_preset("tiny").world
    size = world.size
    bank = make_videos(range(args.videos), world).video.reshape(-1, size, size, 3).contiguous()
    test = make_videos([TEST_SEED_OFFSET, TEST_SEED_OFFSET + 1], world, test=True).video
    test = test.reshape(-1, size, size, 3)[::2]
    base = replace(load_preset("tiny").ae, image_size=size, channels=8, width=96, depth=3, heads=3)
    rows = []
    for text in args.variants:
        overrides = _variant(text)
        steps = overrides.pop("steps", args.steps)
        cooldown = overrides.pop("cooldown", 0.0)
        lr = overrides.pop("lr", 2e-3)
        cfg = replace(base, **overrides)
        task = AutoencoderTask(cfg, bank, args.batch)
        tcfg = TrainConfig(
            steps=steps,
            batch_size=args.batch,
            lr=lr,
            warmup_steps=30,
            cooldown=cooldown,
            seed=args.seed,
        )
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as run:
            train(task, tcfg, Path(run), config={"stage": "bench"}, device=args.device)
            weights, _ = load_checkpoint(Path(run))
        model = HierarchicalAutoencoder(cfg)
        load_weights_into(model, weights, "bench")
        model = model.to(args.device).eval()
        model.calibrate(bank[:512].to(args.device))
        x = test.to(args.device)
        with torch.no_grad():
            ssims = [
                float(ssim(model.decode(z, lvl), x).mean()) for lvl, z in enumerate(model.encode(x))
            ]
        rows.append(
            {
                "variant": text,
                "steps": steps,
                "psnr": [round(v, 2) for v in reconstruction_psnr(model, x)],
                "ssim": [round(v, 3) for v in ssims],
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return {"seed": args.seed, "frames": len(bank), "test_frames": len(test), "runs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--ckpt", required=True)
    q.add_argument("--data", required=True)
    q.add_argument("--videos", type=int, default=16)
    q.add_argument("--stride", type=int, default=4, help="every n-th frame")
    q.add_argument("--batch", type=int, default=512)
    s = sub.add_parser("step")
    s.add_argument("--preset", default="paper")
    s.add_argument("--batch", type=int, default=224)
    s.add_argument("--steps", type=int, default=5)
    s.add_argument("--set", action="append", default=[], help="config override, e.g. ae.width=256")
    g = sub.add_parser("compare")
    g.add_argument("--variants", nargs="+", default=["gradient_weight=0", "gradient_weight=0.3"])
    g.add_argument("--steps", type=int, default=1000, help="unless a variant sets steps=N")
    g.add_argument("--batch", type=int, default=32)
    g.add_argument("--videos", type=int, default=12, help="tiny-world training videos")
    g.add_argument("--seed", type=int, default=0)
    for p in (q, s, g):
        p.add_argument("--device", default=str(resolve_device()))
    args = parser.parse_args()
    print(
        json.dumps(
            {"quality": quality, "step": step, "compare": compare}[args.mode](args), indent=2
        )
    )


if __name__ == "__main__":
    main()
