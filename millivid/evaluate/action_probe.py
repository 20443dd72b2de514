"""Action following: a small inverse-dynamics probe reads the action between two frames.

The probe is trained on ground-truth world renders only (``millivid.world`` gives the action that
moved the agent from frame t-1 to frame t: 0 forward, 1 left, 2 right) and then applied to pairs
of generated frames; the metric ``action_acc`` is 1 where the action it reads equals the
ground-truth action. Its accuracy on held-out ground-truth frames is the metric's ceiling
(docs/EVALUATION.md). Weights: ``model.safetensors`` + ``config.json`` in one folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from millivid.atomic import atomic_path, write_json_atomic
from millivid.evaluate.probe import probe_files
from millivid.weights.files import load_into

ACTION_NAMES = ("forward", "left", "right")  # millivid.world.agent FORWARD, LEFT, RIGHT
CONFIG_KEY = "action_probe"  # config.json section holding ActionProbeConfig


@dataclass(frozen=True)
class ActionProbeConfig:
    """Size of the inverse-dynamics probe."""

    actions: int = 3
    size: int = 64  # frames are resized to size x size (the world preset it was trained on)
    width: int = 24
    max_shift: int = 5  # horizontal search of the cost volume, in cells of 4 px (+-20 px at 64²)
    hidden: int = 64


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GELU()]


def correlation(a: torch.Tensor, b: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Cost volume: a, b [N, C, h, w] -> [N, 3 * (2 * max_shift + 1), h, w]; channel
    (dy + 1) * (2 * max_shift + 1) + dx + max_shift holds the cosine of b[y, x] and a[y + dy, x + dx]
    (0 outside a), for dy in -1..1 and dx in -max_shift..max_shift."""
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    h, w = b.shape[-2:]
    pad = F.pad(a, (max_shift, max_shift, 1, 1))
    return torch.stack(
        [
            (b * pad[..., dy : dy + h, dx : dx + w]).sum(1)
            for dy in range(3)
            for dx in range(2 * max_shift + 1)
        ],
        dim=1,
    )


class ActionProbe(nn.Module):
    """Frame pair uint8 [N, 2, H, W, 3] (frames t-1, t) -> action logits [N, actions].

    A shared encoder maps each frame to features at 1/4 resolution; a cost volume compares them
    at horizontal shifts up to +-20 px (a 15° turn shifts a 64² frame by ~12 px, a forward step
    expands it about the centre), and a small conv net reads it, with the feature difference,
    down to a 4x4 map kept spatial so the head can tell a global shift from an expansion.
    """

    def __init__(self, cfg: ActionProbeConfig) -> None:
        super().__init__()
        w = cfg.width
        self.cfg = cfg
        self.encoder = nn.Sequential(
            *_conv(3, w, 2), *_conv(w, w, 2), nn.Conv2d(w, w, 3, padding=1)
        )
        cost = 3 * (2 * cfg.max_shift + 1)
        self.trunk = nn.Sequential(
            *_conv(cost + w, 2 * w),
            *_conv(2 * w, 2 * w, 2),
            *_conv(2 * w, 4 * w, 2),
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * w, cfg.hidden),
            nn.GELU(),
            nn.Linear(cfg.hidden, cfg.actions),
        )

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        n = pairs.shape[0]
        x = pairs.flatten(0, 1).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # [2N, 3, H, W]
        if x.shape[-2:] != (self.cfg.size, self.cfg.size):
            x = F.interpolate(x, size=(self.cfg.size, self.cfg.size), mode="area")
        f = self.encoder(x).unflatten(0, (n, 2))  # [N, 2, w, size/4, size/4]
        cost = correlation(f[:, 0], f[:, 1], self.cfg.max_shift)
        return self.head(self.trunk(torch.cat([cost, f[:, 1] - f[:, 0]], dim=1)))

    @torch.no_grad()
    def predict(self, pairs: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 2, H, W, 3] -> action ids int64 [N]."""
        return self(pairs).argmax(1)


def frames_before(frames: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """The frame before each frame: frames uint8 [T, H, W, 3], prev [H, W, 3] (the frame before
    frames[0]) -> [T, H, W, 3] = [prev, frames[0], ..., frames[T-2]]."""
    return torch.cat([prev[None].to(frames), frames[:-1]])


def frame_pairs(frames: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """Consecutive pairs (frames[t-1], frames[t]) with frames[-1] := prev: frames uint8
    [T, H, W, 3], prev [H, W, 3] -> [T, 2, H, W, 3]."""
    return torch.stack([frames_before(frames, prev), frames], dim=1)


@torch.no_grad()
def action_accuracy(probe: ActionProbe, pairs: torch.Tensor, actions: torch.Tensor):
    """1.0 where the probe reads the given action, else 0.0: pairs uint8 [N, 2, H, W, 3],
    actions int [N] -> float64 [N]."""
    return (probe.predict(pairs) == actions.to(pairs.device).long()).double()


def save_action_probe(model: ActionProbe, out_dir: Path, extra: dict | None = None) -> None:
    """Write model.safetensors + config.json (``{"action_probe": cfg, **extra}``) atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json_atomic(out_dir / "config.json", {CONFIG_KEY: asdict(model.cfg), **(extra or {})})


def _config(path: Path) -> ActionProbeConfig:
    """The ActionProbeConfig of a config.json; other files are refused with what they are."""
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(raw, dict) or CONFIG_KEY not in raw:
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(
            f"{path} has no {CONFIG_KEY!r} section (found {keys}), so it is not an action probe; "
            "pass --action-probe-weights DIR of `millivid evaluate action-probe-train --out DIR`"
        )
    try:
        return ActionProbeConfig(**raw[CONFIG_KEY])
    except TypeError as err:
        raise ValueError(f"{path}: bad {CONFIG_KEY!r} section: {err}") from err


def load_action_probe(path: Path | str) -> ActionProbe:
    """Load an action probe from a folder (or its model.safetensors) with config.json beside it
    (``probe.probe_files``: the shipped default ``checkpoints/action_probe`` works from
    anywhere)."""
    weights, config = probe_files(
        path, "action probe", "action-probe-train", "--action-probe-weights"
    )
    model = ActionProbe(_config(config))
    try:
        state = load_file(str(weights))
    except Exception as err:  # safetensors raises several types for a damaged file
        raise ValueError(f"cannot read {weights} as safetensors: {err}") from err
    load_into(model, state, weights)
    return model.eval()
