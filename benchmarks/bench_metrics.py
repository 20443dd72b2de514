"""Throughput of PSNR + SSIM (frames/s) on CPU or GPU.

python benchmarks/bench_metrics.py --device cpu --size 64 --frames 768
python benchmarks/bench_metrics.py --device cuda --size 64 256 --frames 768 --batch 768
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from millivid.evaluate.image_metrics import psnr, ssim


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(device: torch.device, size: int, frames: int, batch: int, repeats: int) -> dict:
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (frames, size, size, 3), dtype=torch.uint8, generator=g).to(device)
    b = torch.randint(0, 256, (frames, size, size, 3), dtype=torch.uint8, generator=g).to(device)

    def run() -> None:
        for s in range(0, frames, batch):
            psnr(a[s : s + batch], b[s : s + batch])
            ssim(a[s : s + batch], b[s : s + batch])

    run()  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        run()
    _sync(device)
    dt = (time.perf_counter() - t0) / repeats
    return {
        "device": str(device),
        "size": size,
        "frames": frames,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "frames_per_s": round(frames / dt, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, nargs="+", default=[64])
    p.add_argument("--frames", type=int, default=768)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    device = torch.device(args.device)
    for size in args.size:
        print(json.dumps(bench(device, size, args.frames, args.batch, args.repeats)))


if __name__ == "__main__":
    main()
