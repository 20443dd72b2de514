"""Sin/cos embeddings (positions and diffusion time), as pure functions and one small module."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sincos(pos: Tensor, dim: int, base: float = 10_000.0) -> Tensor:
    """Sin/cos features of real positions ``pos`` [...]: float32 [..., dim] (dim even)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(base) * torch.arange(half, device=pos.device, dtype=torch.float32) / half
    )
    angles = pos.float().unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def axis_dims(width: int) -> tuple[int, int, int]:
    """Split of ``width`` into (frame, row, col) sin/cos dims, each even."""
    spatial = 2 * (width // 6)
    return width - 2 * spatial, spatial, spatial


def position_3d(frame: Tensor, row: Tensor, col: Tensor, width: int) -> Tensor:
    """3D sin/cos embedding [..., width] of (frame, row, col) positions (floats)."""
    df, dr, dc = axis_dims(width)
    return torch.cat([sincos(frame, df), sincos(row, dr), sincos(col, dc)], dim=-1)


def block_centre(index: Tensor, level: Tensor) -> Tensor:
    """Level-0 coordinate of the centre of cell ``index`` of a grid ``2^level`` times coarser:
    ``(index + 0.5) * 2^level - 0.5`` (equals ``index`` at level 0)."""
    scale = torch.pow(2.0, level.float())
    return (index.float() + 0.5) * scale - 0.5


class TimestepEmbedder(nn.Module):
    """Diffusion time t in [0, 1] -> [..., width]: sin/cos of 1000 t, then a 2-layer MLP."""

    def __init__(self, width: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(sincos(1000.0 * t, self.freq_dim))


class PoseEmbedder(nn.Module):
    """Relative camera poses [..., 3] (forward, left in blocks; yaw change in radians) ->
    [..., width]: sin/cos of the displacement (quarter-block resolution, wavelengths up to
    thousands of blocks) and of the first harmonics of the yaw change, then a 2-layer MLP."""

    def __init__(self, width: int, freq_dim: int = 64, harmonics: int = 4) -> None:
        super().__init__()
        self.freq_dim, self.harmonics = freq_dim, harmonics
        self.mlp = nn.Sequential(
            nn.Linear(2 * freq_dim + 2 * harmonics, width), nn.SiLU(), nn.Linear(width, width)
        )

    def forward(self, pose: Tensor) -> Tensor:
        yaw = pose[..., 2:3].float() * torch.arange(
            1, self.harmonics + 1, device=pose.device, dtype=torch.float32
        )
        feats = [
            sincos(4.0 * pose[..., 0], self.freq_dim),
            sincos(4.0 * pose[..., 1], self.freq_dim),
        ]
        feats += [torch.sin(yaw), torch.cos(yaw)]
        return self.mlp(torch.cat(feats, dim=-1).to(self.mlp[0].weight.dtype))
