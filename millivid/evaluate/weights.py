"""Where each learned metric finds its weight file, and loading with errors that name the file.

Nothing is downloaded. A metric's file comes from (first that is set) its config field / CLI flag
(``--lpips-weights PATH``), or the environment variable ``MILLIVID_LPIPS_WEIGHTS``.
docs/EVALUATION.md lists the exact published files and where to get them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

# weight name -> (published file, what it is)
WEIGHT_FILES: dict[str, tuple[str, str]] = {
    "alexnet": (
        "alexnet-owt-7be5be79.pth",
        "torchvision AlexNet ImageNet weights (LPIPS backbone)",
    ),
    "lpips": ("alex.pth", "LPIPS v0.1 linear layers for AlexNet (richzhang/PerceptualSimilarity)"),
    "dino": ("dinov2_vits14_pretrain.pth", "DINOv2 ViT-S/14 (facebookresearch/dinov2)"),
    "disk": ("depth-save.pth", "DISK depth checkpoint (cvlab-epfl/disk)"),
    "lightglue": ("disk_lightglue.pth", "LightGlue for DISK v0.1_arxiv (cvg/LightGlue)"),
    "fid": ("inception-2015-12-05.pt", "Inception-v3 TorchScript (NVlabs stylegan2-ada metrics)"),
    "fvd": ("i3d_torchscript.pt", "I3D Kinetics-400 TorchScript (StyleGAN-V FVD)"),
}


class MissingWeightsError(FileNotFoundError):
    """A metric's weight file is not configured or does not exist."""


def env_var(name: str) -> str:
    """Environment variable naming the weight file of ``name`` (e.g. MILLIVID_LPIPS_WEIGHTS)."""
    return f"MILLIVID_{name.upper()}_WEIGHTS"


def weight_path(name: str, configured: str = "") -> Path:
    """The weight file of ``name``: ``configured`` if set, else its environment variable."""
    published, what = WEIGHT_FILES[name]
    value = configured or os.environ.get(env_var(name), "")
    flag = f"--{name}-weights"
    if not value:
        raise MissingWeightsError(
            f"metric weights {name!r} not given: pass {flag} PATH or set {env_var(name)} "
            f"to the file {published} ({what}); see docs/EVALUATION.md"
        )
    path = Path(value).expanduser()
    if not path.is_file():
        raise MissingWeightsError(
            f"weight file {path} for {name!r} does not exist (expected {published}: {what}; "
            f"set it with {flag} or {env_var(name)})"
        )
    return path


def load_state_dict_file(path: Path) -> dict[str, Any]:
    """A torch state dict saved with torch.save, loaded with weights_only=True."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle/zip errors come in many types
        raise ValueError(f"cannot read weight file {path}: {err}") from err
    if not isinstance(state, dict):
        raise ValueError(f"weight file {path} holds a {type(state).__name__}, not a state dict")
    return state


def load_into(module: nn.Module, state: dict[str, Any], path: Path) -> None:
    """Strictly load ``state`` into ``module``; a missing/extra key or bad shape names the file."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise ValueError(
            f"weight file {path} does not fit {type(module).__name__}: "
            f"missing keys {missing[:5]}, unexpected keys {extra[:5]}"
        )
    for key, value in own.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(
                f"weight file {path}: key {key!r} has shape {tuple(state[key].shape)}, "
                f"expected {tuple(value.shape)}"
            )
    module.load_state_dict(state)


def load_torchscript(path: Path, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """A TorchScript detector (FID Inception, FVD I3D) in eval mode."""
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except Exception as err:
        raise ValueError(f"cannot load TorchScript file {path}: {err}") from err
