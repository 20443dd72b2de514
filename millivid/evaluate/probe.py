"""World-grounded consistency: a small per-pixel block-kind segmentation probe.

The probe is trained on ground-truth renders only (``millivid.world`` gives per-pixel block labels)
and then applied to generated frames; its labels are compared with the ground-truth labels of the
same frames (pixel accuracy, mean IoU). Its accuracy on held-out ground-truth frames is its
ceiling (docs/EVALUATION.md). Weights: ``model.safetensors`` + ``config.json`` in one folder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from millivid.atomic import atomic_path, read_json, write_json_atomic
from millivid.weights.files import load_into


@dataclass(frozen=True)
class ProbeConfig:
    """Size of the probe network."""

    classes: int = 16  # len(millivid.world.BLOCK_KINDS)
    width: int = 32


class SegmentationProbe(nn.Module):
    """A tiny U-shaped conv net. frames uint8 [N, H, W, 3] -> logits [N, classes, H, W]."""

    def __init__(self, cfg: ProbeConfig) -> None:
        super().__init__()
        w = cfg.width
        self.cfg = cfg
        self.stem = nn.Sequential(nn.Conv2d(5, w, 3, padding=1), nn.GELU())
        self.down = nn.Sequential(
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=2, dilation=2),
            nn.GELU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.GELU(),
        )
        self.head = nn.Sequential(
            nn.Conv2d(3 * w, w, 3, padding=1), nn.GELU(), nn.Conv2d(w, cfg.classes, 1)
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        n, h, w, _ = frames.shape
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # [N, 3, H, W]
        # image row/column as inputs: sky is at the top, near ground at the bottom
        rows = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(n, 1, h, w)
        cols = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, w).expand(n, 1, h, w)
        skip = self.stem(torch.cat([x, rows, cols], dim=1))  # [N, w, H, W]
        deep = F.interpolate(self.down(skip), size=(h, w), mode="nearest")  # [N, 2w, H, W]
        return self.head(torch.cat([skip, deep], dim=1))

    @torch.no_grad()
    def predict(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [N, H, W, 3] -> block-kind ids int64 [N, H, W]."""
        return self(frames).argmax(1)


def pixel_accuracy(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Fraction of equal labels per frame. int [N, H, W] x 2 -> float64 [N]."""
    return (pred == gt).flatten(1).double().mean(1)


def mean_iou(pred: torch.Tensor, gt: torch.Tensor, classes: int) -> torch.Tensor:
    """Per frame, the mean IoU over the classes present in pred or gt. int [N,H,W] x 2 -> [N]."""
    p = F.one_hot(pred.long().flatten(1), classes).bool()  # [N, HW, K]
    g = F.one_hot(gt.long().flatten(1), classes).bool()
    inter = (p & g).sum(1).double()
    union = (p | g).sum(1).double()
    present = union > 0
    return (inter / union.clamp_min(1)).sum(1) / present.sum(1)


def save_probe(model: SegmentationProbe, out_dir: Path, extra: dict | None = None) -> None:
    """Write model.safetensors + config.json atomically into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json_atomic(out_dir / "config.json", {"probe": asdict(model.cfg), **(extra or {})})


REPO_ROOT = Path(__file__).resolve().parents[2]


def probe_files(path: Path | str, what: str, train: str, flag: str) -> tuple[Path, Path]:
    """(model.safetensors, config.json) of a probe folder (or its model.safetensors).

    A relative path that does not exist from the working directory is looked up from the
    repository root, so the shipped defaults (``checkpoints/...``) work from anywhere. A missing
    file names itself, the command that trains one (``train``) and the flag to pass."""
    path = Path(path)
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path
    folder = path if path.is_dir() or path.suffix != ".safetensors" else path.parent
    weights, config = folder / "model.safetensors", folder / "config.json"
    for f in (weights, config):
        if not f.is_file():
            raise FileNotFoundError(
                f"{what} file {f} does not exist; train one with "
                f"`millivid evaluate {train} --out DIR` or pass {flag} DIR"
            )
    return weights, config


def load_probe(path: Path | str) -> SegmentationProbe:
    """Load a label probe from a folder (or its model.safetensors) with config.json beside it
    (``probe_files``)."""
    weights, config = probe_files(path, "probe", "probe-train", "--probe-weights")
    raw = read_json(config)
    cfg = ProbeConfig(**raw.get("probe", raw.get("config", {}).get("probe", {})))
    model = SegmentationProbe(cfg)
    state = load_file(str(weights))
    state = {k.removeprefix("module."): v for k, v in state.items()}
    load_into(model, state, weights)
    return model.eval()
