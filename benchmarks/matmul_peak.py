"""Measured bf16 matmul peak (TFLOP/s) on this GPU: the denominator of every MFU we report.

python benchmarks/matmul_peak.py            # 8192^3 bf16, random data, median of 20
"""

from __future__ import annotations

import argparse

import torch


def matmul_peak_tflops(n: int = 8192, repeats: int = 20, device: str = "cuda") -> float:
    """Median TFLOP/s of an n x n x n bf16 matmul on random data (after warm-up)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    times.sort()
    return 2 * n**3 / times[len(times) // 2] / 1e12


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=8192)
    args = parser.parse_args()
    print(
        f"{torch.cuda.get_device_name()}: bf16 matmul {args.n}^3: {matmul_peak_tflops(args.n):.0f} TFLOP/s"
    )
