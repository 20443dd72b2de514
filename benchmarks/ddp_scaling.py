"""Multi-GPU scaling of a real training run: `millivid video train` under torchrun on 1, 2, …
GPUs of one machine, samples/s from each run's metrics.jsonl.

The runs train on a latent cache of random latents with the preset autoencoder's shapes (throughput
does not depend on what the latents show, and no autoencoder of the preset has to exist), through
the whole pipeline: DataLoader workers, packing, DDP, Muon/AdamW, EMA, logging, checkpoints.
``video_train.batch_size`` is per process, so N GPUs train on N times the samples per step.

    python benchmarks/ddp_scaling.py --preset paper --gpus 1,2 --steps 200 --out /tmp/scaling
    python benchmarks/ddp_scaling.py --preset tiny --gpus 1,2 --steps 20 --device cpu --out /tmp/s
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from millivid.data.latent_cache import write_cache_meta, write_latent_video  # noqa: E402
from millivid.presets import load_preset  # noqa: E402


def random_cache(out: Path, preset: str, videos: int, frames: int, seed: int = 0) -> Path:
    """A latent cache of random latents with the shapes of ``preset``'s autoencoder, random
    actions and a random-walk camera track."""
    ae = load_preset(preset).ae
    side = ae.image_size // ae.patch
    shapes = [(side >> lvl, side >> lvl) for lvl in range(ae.levels)]
    gen = torch.Generator().manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(videos):
        levels = [torch.randn(frames, h, w, ae.channels, generator=gen) for h, w in shapes]
        actions = torch.randint(0, 3, (frames,), generator=gen)
        poses = torch.randn(frames, 5, generator=gen).cumsum(0)
        write_latent_video(out / f"{i:06d}.safetensors", levels, actions, poses)
    write_cache_meta(
        out,
        {
            "levels": ae.levels,
            "channels": ae.channels,
            "tokens_per_frame": [h * w for h, w in shapes],
            "shapes": [list(s) for s in shapes],
            "videos": videos,
            "autoencoder": f"random latents ({preset} shapes)",
            "autoencoder_digest": None,
            "data": None,
        },
    )
    return out


def steady_rate(metrics: Path) -> tuple[float, int]:
    """(median steps/s over the second half of the logged steps, logged steps)."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    rates = [r["steps_per_s"] for r in rows]
    if len(rates) < 2:
        raise SystemExit(f"{metrics}: {len(rates)} logged steps; train longer (--steps)")
    return statistics.median(rates[len(rates) // 2 :]), len(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="paper", choices=("tiny", "mini", "paper"))
    parser.add_argument("--method", default="millivid")
    parser.add_argument("--gpus", default="1,2", help="comma list of process counts")
    parser.add_argument("--steps", type=int, default=200, help="training steps per run")
    parser.add_argument("--videos", type=int, default=16, help="random-latent videos")
    parser.add_argument("--frames", type=int, default=1024, help="frames per video")
    parser.add_argument("--device", default="cuda", help="cuda (NCCL) or cpu (gloo)")
    parser.add_argument("--set", action="append", default=[], help="config override k=v")
    parser.add_argument("--out", type=Path, required=True, help="work folder")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()

    cache = args.out / "latents"
    if not (cache / "cache.json").is_file():
        random_cache(cache, args.preset, args.videos, args.frames)
    overrides = [f"video_train.steps={args.steps}", *args.set]
    batch = load_preset(args.preset, overrides).video_train.batch_size  # per process
    results = []
    for n in (int(g) for g in args.gpus.split(",")):
        run = args.out / f"gpus{n}"
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={n}", "-m", "millivid", "video", "train",
            "--method", args.method, "--preset", args.preset, "--latents", str(cache),
            "--out", str(run), "--device", args.device, "--overwrite",
            *(x for o in overrides for x in ("--set", o)),
        ]  # fmt: skip
        print("$", " ".join(cmd), flush=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
        rate, logged = steady_rate(run / "metrics.jsonl")
        results.append(
            {"gpus": n, "steps_per_s": rate, "samples_per_s": rate * batch * n, "logged": logged}
        )
    base = results[0]["samples_per_s"] / results[0]["gpus"]
    print(f"\n{args.preset}, {args.method}: samples/s (median of the second half of the log)")
    for r in results:
        r["speedup"] = r["samples_per_s"] / results[0]["samples_per_s"]
        r["efficiency"] = r["samples_per_s"] / (base * r["gpus"])
        print(
            f"  {r['gpus']} process(es): {r['samples_per_s']:9.1f} samples/s  "
            f"×{r['speedup']:.2f}  efficiency {r['efficiency']:.0%}"
        )
    out = {
        "preset": args.preset,
        "method": args.method,
        "steps": args.steps,
        "batch_per_process": batch,
        "runs": results,
    }
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
