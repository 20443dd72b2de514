"""Sin/cos embeddings (positions, diffusion time, camera poses) and pose rotary angles."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from millivid.nn import sincos


def axis_dims(width: int) -> tuple[int, int, int]:
    """Split of ``width`` into (frame, row, col) sin/cos dims, each even."""
    spatial = 2 * (width // 6)
    return width - 2 * spatial, spatial, spatial


def position_3d(frame: Tensor, row: Tensor, col: Tensor, width: int) -> Tensor:
    """3D sin/cos embedding [..., width] of (frame, row, col) positions (floats)."""
    df, dr, dc = axis_dims(width)
    return torch.cat([sincos(frame, df), sincos(row, dr), sincos(col, dc)], dim=-1)


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


# pose rotary angles: displacement wavelengths 2, 4, ..., 64 blocks per axis, yaw harmonics 1-4
POSE_WAVELENGTHS = tuple(2.0 * 2**j for j in range(6))
POSE_HARMONICS = 4
POSE_ROPE_DIMS = 2 * (2 * len(POSE_WAVELENGTHS) + POSE_HARMONICS)  # 32 query/key dims


def pose_angles(pose: Tensor) -> Tensor:
    """Relative camera poses [..., 3] (forward, left in blocks; yaw in radians) -> rotary angles
    float32 [..., POSE_ROPE_DIMS / 2]: each displacement axis times 2π / wavelength, and the yaw
    times 1..POSE_HARMONICS. Angle differences between two tokens depend only on their pose
    difference, so rotated query·key products do too."""
    omega = torch.tensor([2 * math.pi / w for w in POSE_WAVELENGTHS], device=pose.device)
    harmonics = torch.arange(1, POSE_HARMONICS + 1, device=pose.device, dtype=torch.float32)
    pose = pose.float()
    return torch.cat(
        [pose[..., 0:1] * omega, pose[..., 1:2] * omega, pose[..., 2:3] * harmonics], dim=-1
    )


def rotate(x: Tensor, angles: Tensor) -> Tensor:
    """Rotary embedding of the first 2·A dims of x [B, H, n, d] by angles float32 [B, n, A]
    (pairs (i, A + i) rotate by angle i); the other dims pass unchanged."""
    a = angles.shape[-1]
    cos, sin = (f(angles).unsqueeze(1).to(x.dtype) for f in (torch.cos, torch.sin))
    x1, x2, rest = x[..., :a], x[..., a : 2 * a], x[..., 2 * a :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest], dim=-1)
