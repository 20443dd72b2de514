"""The published weight files of the learned metrics: where they come from, where millivid looks
for them, and loading with errors that name the file.

Each file is looked up, first that is set: its config field / CLI flag (``--lpips-weights PATH``),
its environment variable (``MILLIVID_LPIPS_WEIGHTS``), else its published name in the weights
folder: ``--weights-dir DIR``, the ``MILLIVID_WEIGHTS`` environment variable, or
``~/.cache/millivid/weights``. ``millivid weights fetch`` downloads the files into that folder
(millivid.weights.fetch); nothing is downloaded while evaluating.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

WEIGHTS_DIR_ENV = "MILLIVID_WEIGHTS"
DEFAULT_WEIGHTS_DIR = "~/.cache/millivid/weights"
FROM_FOLDER = "from the weights folder"


@dataclass(frozen=True)
class PublishedFile:
    """One weight file as its publisher releases it, and how its bytes are checked.

    Only digests that the publisher itself releases are recorded: a full ``sha256``; else a
    ``sha256_prefix`` (torch.hub file names carry the first 8 hex digits) or the ``git_blob`` id
    of the file in the publisher's repository. A file with none of them is fetched unverified.
    """

    file: str  # published file name, also its name in the weights folder
    what: str
    url: str  # official download location
    source: str  # who publishes the file
    hash_source: str  # where the digest below was read, or why there is none
    sha256: str | None = None
    sha256_prefix: str = ""
    git_blob: str = ""  # git's SHA-1 of b"blob <size>\0" + content

    @property
    def check(self) -> str:
        """How a downloaded copy is verified: 'sha256', 'sha256 prefix', 'git blob' or 'none'."""
        if self.sha256:
            return "sha256"
        if self.sha256_prefix:
            return "sha256 prefix"
        return "git blob" if self.git_blob else "none"


# The one table of published files: name (as in --<name>-weights) -> file, location and digest.
WEIGHT_FILES: dict[str, PublishedFile] = {
    "alexnet": PublishedFile(
        file="alexnet-owt-7be5be79.pth",
        what="torchvision AlexNet ImageNet weights (LPIPS backbone; only features.* is used)",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        source="PyTorch: torchvision AlexNet_Weights.IMAGENET1K_V1",
        hash_source="the file name: torchvision publishes only the first 8 hex digits of the "
        "SHA-256 (torch.hub's check_hash)",
        sha256_prefix="7be5be79",
    ),
    "lpips": PublishedFile(
        file="alex.pth",
        what="LPIPS v0.1 linear layers for AlexNet",
        url="https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/v0.1.4/"
        "lpips/weights/v0.1/alex.pth",
        source="richzhang/PerceptualSimilarity, tag v0.1.4 (lpips/weights/v0.1/alex.pth)",
        hash_source="RECORD of the lpips 0.1.4 wheel on PyPI (lpips/weights/v0.1/alex.pth, "
        "6009 bytes); the same bytes as the file at the tag",
        sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    ),
    "dino": PublishedFile(
        file="dinov2_vits14_pretrain.pth",
        what="DINOv2 ViT-S/14 backbone",
        url="https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth",
        source="Meta AI: facebookresearch/dinov2 (README model table, torch.hub backbones)",
        hash_source="none published (torch.hub loads it without a hash check)",
    ),
    "disk": PublishedFile(
        file="depth-save.pth",
        what="DISK depth checkpoint (the file kornia's DISK.from_pretrained('depth') fetches)",
        url="https://raw.githubusercontent.com/cvlab-epfl/disk/"
        "8dc6d4d65b47210f629e21ad1fbfb56944b11696/depth-save.pth",
        source="cvlab-epfl/disk, commit 8dc6d4d6 (depth-save.pth)",
        hash_source="git tree of cvlab-epfl/disk at commit 8dc6d4d6; no SHA-256 is published",
        git_blob="0ae0911444297ea0fa5179ac7e9d0e8d7354d537",
    ),
    "lightglue": PublishedFile(
        file="disk_lightglue.pth",
        what="LightGlue for DISK features",
        url="https://github.com/cvg/LightGlue/releases/download/v0.1_arxiv/disk_lightglue.pth",
        source="cvg/LightGlue, release v0.1_arxiv",
        hash_source="none published (the release lists no digest; LightGlue and kornia load it "
        "without a hash check)",
    ),
    "fid": PublishedFile(
        file="inception-2015-12-05.pt",
        what="Inception-v3 TorchScript, the FID feature network",
        url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
        "inception-2015-12-05.pt",
        source="NVIDIA: NVlabs/stylegan2-ada-pytorch metrics (also used by clean-fid)",
        hash_source="none published",
    ),
    "fvd": PublishedFile(
        file="i3d_torchscript.pt",
        what="I3D Kinetics-400 TorchScript, the FVD feature network",
        url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
        source="StyleGAN-V: universome/stylegan-v src/metrics/frechet_video_distance.py",
        hash_source="none published",
    ),
}

# metric (as in --metrics) -> the weight files it reads
METRIC_WEIGHTS: dict[str, tuple[str, ...]] = {
    "lpips": ("alexnet", "lpips"),
    "dino": ("dino",),
    "matches": ("disk", "lightglue"),
    "fid": ("fid",),
    "fvd": ("fvd",),
}
# ``millivid weights fetch NAME``: NAME -> the weight files it downloads
FETCH_GROUPS: dict[str, tuple[str, ...]] = {
    "lpips": ("alexnet", "lpips"),
    "dino": ("dino",),
    "lightglue": ("disk", "lightglue"),
    "fid": ("fid",),
    "fvd": ("fvd",),
}


class MissingWeightsError(FileNotFoundError):
    """A metric's weight file is not configured or does not exist."""


def env_var(name: str) -> str:
    """Environment variable naming the weight file of ``name`` (e.g. MILLIVID_LPIPS_WEIGHTS)."""
    return f"MILLIVID_{name.upper()}_WEIGHTS"


def weights_dir(folder: str | os.PathLike | None = None) -> Path:
    """The weights folder: ``folder`` if given, else $MILLIVID_WEIGHTS, else the default."""
    value = folder or os.environ.get(WEIGHTS_DIR_ENV, "") or DEFAULT_WEIGHTS_DIR
    return Path(value).expanduser()


def fetch_groups(names: Iterable[str]) -> list[str]:
    """The ``millivid weights fetch`` names that download the weight files ``names``."""
    wanted = set(names)
    groups = [group for group, files in FETCH_GROUPS.items() if wanted & set(files)]
    return ["all"] if len(groups) == len(FETCH_GROUPS) else groups


def fetch_command(names: Iterable[str], folder: str | os.PathLike | None = None) -> str:
    """The exact command that downloads the weight files ``names`` into the weights folder."""
    groups = " ".join(fetch_groups(names)) or "all"
    return f"millivid weights fetch {groups} --dir {shlex.quote(str(weights_dir(folder)))}"


def resolve_weight(
    name: str, configured: str = "", folder: str | os.PathLike | None = None
) -> tuple[Path, str]:
    """(path, where it came from) of the weight file ``name``; the file need not exist.

    ``configured`` (config field / CLI flag) wins, then the file's environment variable, then
    the published file name in the weights folder (``folder``, $MILLIVID_WEIGHTS, the default).
    """
    if configured:
        return Path(configured).expanduser(), f"from --{name}-weights or the config"
    if value := os.environ.get(env_var(name), ""):
        return Path(value).expanduser(), f"from {env_var(name)}"
    return weights_dir(folder) / WEIGHT_FILES[name].file, FROM_FOLDER


def missing_weights(
    metrics: Iterable[str],
    configured: Mapping[str, str] | None = None,
    folder: str | os.PathLike | None = None,
) -> list[tuple[str, Path, str]]:
    """(name, path, where it came from) of every weight file ``metrics`` need that does not exist."""
    configured = configured or {}
    names = dict.fromkeys(n for m in metrics for n in METRIC_WEIGHTS.get(m, ()))
    out = []
    for name in names:
        path, origin = resolve_weight(name, configured.get(name, ""), folder)
        if not path.is_file():
            out.append((name, path, origin))
    return out


def missing_message(
    missing: list[tuple[str, Path, str]], folder: str | os.PathLike | None = None
) -> str:
    """One error text listing every missing file and the command that fetches them."""
    lines = [f"{len(missing)} metric weight file(s) missing:"]
    for name, path, origin in missing:
        lines.append(f"  {path}  ({name}: {WEIGHT_FILES[name].what}; {origin})")
    lines.append(f"fetch them with: {fetch_command([n for n, _, _ in missing], folder)}")
    if any(origin != FROM_FOLDER for _, _, origin in missing):
        lines.append(
            "(a file set by a --<name>-weights flag or MILLIVID_<NAME>_WEIGHTS is read from "
            "that path instead: fix it or drop the setting to use the weights folder)"
        )
    lines.append("files, sources and hashes: docs/EVALUATION.md")
    return "\n".join(lines)


def require_weights(
    metrics: Iterable[str],
    configured: Mapping[str, str] | None = None,
    folder: str | os.PathLike | None = None,
) -> None:
    """Raise one MissingWeightsError that lists every weight file ``metrics`` need and lack."""
    if missing := missing_weights(metrics, configured, folder):
        raise MissingWeightsError(missing_message(missing, folder))


def weight_path(name: str, configured: str = "", folder: str | os.PathLike | None = None) -> Path:
    """The existing weight file of ``name`` (resolved as ``resolve_weight``), or an error."""
    path, origin = resolve_weight(name, configured, folder)
    if not path.is_file():
        published = WEIGHT_FILES[name]
        raise MissingWeightsError(
            f"weight file {path} for {name!r} does not exist (expected {published.file}: "
            f"{published.what}; {origin}). Give the file with --{name}-weights PATH or "
            f"{env_var(name)}, or fetch it with: {fetch_command([name], folder)}"
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
