"""Network pieces shared by the autoencoder and the video DiT: sin/cos features, block centres,
adaLN modulation, the parameter count and the choice of attention kernel. Imports only torch, so
every package can use it."""

from __future__ import annotations

import contextlib
import math

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

# scaled-dot-product-attention kernels by name; "auto": PyTorch's choice (cuDNN's on Hopper GPUs
# with torch 2.11). cudnn and efficient exist on CUDA only.
SDPA_BACKENDS = {
    "auto": None,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "math": SDPBackend.MATH,
}


def attention_kernel(name: str) -> contextlib.AbstractContextManager:
    """A context in which every SDPA call runs the kernel ``name`` (``SDPA_BACKENDS``) and,
    where that kernel cannot take the inputs (the float32 autoencoder under ``flash`` or
    ``cudnn``, which need half precision; any of the GPU kernels on a CPU), the math kernel."""
    if name not in SDPA_BACKENDS:
        raise ValueError(f"attention kernel {name!r}: expected one of {', '.join(SDPA_BACKENDS)}")
    backend = SDPA_BACKENDS[name]
    if backend is None:
        return contextlib.nullcontext()
    return sdpa_kernel([backend, SDPBackend.MATH], set_priority=True)


def sincos(pos: Tensor, dim: int, base: float = 10_000.0) -> Tensor:
    """Sin/cos features of real positions ``pos`` [...]: float32 [..., dim] (dim even), the
    sines then the cosines of ``pos * base^(-i / (dim/2))``, i = 0 .. dim/2 - 1."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(base) * torch.arange(half, device=pos.device, dtype=torch.float32) / half
    )
    angles = pos.float().unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def block_centre(index: Tensor, level: Tensor) -> Tensor:
    """Level-0 coordinate of the centre of cell ``index`` of a grid ``2^level`` times coarser:
    ``(index + 0.5) * 2^level - 0.5`` (equals ``index`` at level 0)."""
    scale = torch.pow(2.0, level.float())
    return (index.float() + 0.5) * scale - 0.5


def modulate(x: Tensor, shift: Tensor | float, scale: Tensor | float) -> Tensor:
    """adaLN: ``x * (1 + scale) + shift`` (shift and scale broadcast against x [B, n, D])."""
    return x * (1 + scale) + shift


def count_parameters(model: nn.Module, trainable: bool = False) -> int:
    """Number of parameters of ``model`` (only those that require gradients with
    ``trainable``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)
