"""GPU time per step by kernel category under torch.profiler, for the benchmarks' ``--profile``
(the table of the top kernels is written beside)."""

from __future__ import annotations

from pathlib import Path

import torch

# kernel-name patterns of each category of GPU time (first match wins)
KERNEL_KINDS = (
    ("attention", ("flash", "fmha", "attention", "sdpa", "cudnn")),
    ("matmul", ("gemm", "nvjet", "xmma", "cutlass", "matmul", "sm90_")),
    ("optimizer", ("multi_tensor", "foreach", "adam", "_amp_")),
    ("fused elementwise/norm (Triton)", ("triton",)),
    ("copy", ("memcpy", "memset", "copy", "cat")),
)


def profile(fn, steps: int, path: Path) -> dict:
    """Run ``fn`` ``steps`` times under torch.profiler; write the top-kernel table to ``path``
    and return the GPU time per step by kernel category (``KERNEL_KINDS``)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch_profile(activities=activities) as prof:
        for _ in range(steps):
            fn()
        if cuda:
            torch.cuda.synchronize()
    table = prof.key_averages().table(
        sort_by="self_cuda_time_total", row_limit=40, max_name_column_width=90
    )
    path.write_text(table + "\n")
    kinds: dict[str, float] = {}
    for event in prof.key_averages():
        us = event.self_device_time_total
        kernel = event.device_type == torch.autograd.DeviceType.CUDA
        # user annotations (e.g. "Optimizer.step#Muon.step") span kernels counted on their own
        if us <= 0 or not kernel or getattr(event, "is_user_annotation", False):
            continue
        name = event.key.lower()
        kind = next((k for k, pats in KERNEL_KINDS if any(p in name for p in pats)), "other")
        kinds[kind] = kinds.get(kind, 0.0) + us / 1e3 / steps
    kinds["total"] = sum(kinds.values())
    return {k: round(v, 2) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])}
