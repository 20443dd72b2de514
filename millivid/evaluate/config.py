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
    # paired.md compares every method with each of these (the first falls back to the first method)
    references: tuple[str, ...] = ("millivid",)
    # Revisit split (docs/EVALUATION.md "Revisits"): a generated frame is a revisit when its GT
    # pose is within both thresholds of some context frame's pose. World geometry
    # (millivid.world.config): 2 blocks = 8 forward frames at 0.25 blocks/frame, a tenth of the
    # 20-block fog start and under a third of the ~7-block tree spacing, so the same trees stand
    # in view at the same places; 15 degrees = one turn frame (a 90-degree turn takes 6), and
    # with a 70-degree field of view keeps 55/70 = 79% of the view in common. Yaws differ only by
    # multiples of 15 degrees, so this admits the same heading or one turn frame off, not two.
    revisit_distance: float = 2.0  # blocks, in x-y
    revisit_yaw: float = 15.0  # degrees, wrapped to [-180, 180]
    memory_reference: str = "nearest-pose"  # memory gain on revisit frames is against this method
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
    action_probe_weights: str = "checkpoints/action_probe"  # inverse-dynamics probe (action_acc)
