"""Evaluation configuration: horizons, metric list, batch size and where the metric weights are.

Weight files are never downloaded: each learned metric reads one local file, named by its
config field, the matching environment variable or the matching CLI flag (docs/EVALUATION.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalConfig:
    """Which metrics, how frames are grouped into horizons, and the metric weight files."""

    metrics: tuple[str, ...] = ("psnr", "ssim")
    # paper Table 1: short = generated frames 1-64, medium = 65-256, long = 257-768
    horizon_names: tuple[str, ...] = ("short", "medium", "long")
    horizon_ends: tuple[int, ...] = (64, 256, 768)  # last frame of each horizon, 1-based
    batch_frames: int = 64  # frames per forward pass of a learned metric
    reference: str = "millivid"  # paired.md compares every method with this one (else the first)
    match_confidence: float = 0.5  # LightGlue matches counted above this confidence
    fvd_clip: int = 16  # frames per I3D clip
    # weight files; "" = take the environment variable (MILLIVID_<NAME>_WEIGHTS) or fail
    lpips_weights: str = ""  # lpips alex.pth (linear layers)
    alexnet_weights: str = ""  # torchvision alexnet-owt-7be5be79.pth (feature layers)
    dino_weights: str = ""  # dinov2_vits14_pretrain.pth
    lightglue_weights: str = ""  # disk_lightglue.pth (kornia/cvg LightGlue for DISK)
    disk_weights: str = ""  # DISK depth-save checkpoint (kornia DISK.from_pretrained format)
    fid_weights: str = ""  # inception-2015-12-05.pt (TorchScript)
    fvd_weights: str = ""  # i3d_torchscript.pt
    probe_weights: str = "checkpoints/probe"  # folder with model.safetensors + config.json


PRESETS = {
    "tiny": EvalConfig(horizon_ends=(8, 32, 96), batch_frames=16),
    "mini": EvalConfig(),
    "paper": EvalConfig(),
}
