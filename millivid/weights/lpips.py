"""LPIPS (Zhang et al. 2018), AlexNet variant, from the published weight files.

torchvision is not a dependency, so ``AlexFeatures`` rebuilds AlexNet's convolutional trunk with
the same module indices as ``torchvision.models.alexnet().features``; its state-dict keys
(``features.0.weight`` …) load unchanged from ``alexnet-owt-7be5be79.pth``. The LPIPS linear
heads keep the keys of the published ``alex.pth`` (``lin0.model.1.weight`` …).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from millivid.weights.files import load_into, load_state_dict_file

TAP_CHANNELS = (64, 192, 384, 256, 256)  # channels after each ReLU that LPIPS compares
# LPIPS input scaling for [-1, 1] images (the constants of the reference implementation)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class AlexFeatures(nn.Module):
    """AlexNet conv trunk; returns the 5 ReLU outputs LPIPS uses. [N,3,H,W] -> 5 x [N,C_i,h_i,w_i]."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),  # 0
            nn.ReLU(),  # 1 (tap)
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),  # 3
            nn.ReLU(),  # 4 (tap)
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),  # 6
            nn.ReLU(),  # 7 (tap)
            nn.Conv2d(384, 256, 3, padding=1),  # 8
            nn.ReLU(),  # 9 (tap)
            nn.Conv2d(256, 256, 3, padding=1),  # 10
            nn.ReLU(),  # 11 (tap)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in (1, 4, 7, 9, 11):
                taps.append(x)
        return taps


class _Linear(nn.Module):
    """1x1 conv without bias; ``model.1`` matches the published key layout (0 was Dropout)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPS(nn.Module):
    """LPIPS distance per frame. pred, gt: uint8 [N, H, W, 3] -> float [N] (lower = closer)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = AlexFeatures()
        self.lins = nn.ModuleList(_Linear(c) for c in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_files(cls, alexnet_path: Path, lpips_path: Path) -> LPIPS:
        """Load torchvision's AlexNet file (``features.*`` only) and LPIPS's ``alex.pth``."""
        model = cls()
        alex = load_state_dict_file(alexnet_path)
        load_into(
            model.net, {k: v for k, v in alex.items() if k.startswith("features.")}, alexnet_path
        )
        lin = load_state_dict_file(lpips_path)
        renamed = {k.removeprefix("lin"): v for k, v in lin.items()}  # lin0.* -> 0.*
        load_into(model.lins, renamed, lpips_path)
        return model.eval()

    def _features(self, frames: torch.Tensor) -> list[torch.Tensor]:
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # [N, 3, H, W] in [-1, 1]
        return self.net((x - self.shift) / self.scale)

    @torch.no_grad()
    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(pred.shape[0], device=pred.device)
        for lin, a, b in zip(self.lins, self._features(pred), self._features(gt)):
            a = a / (a.square().sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.square().sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin.model((a - b).square()).mean(dim=(1, 2, 3))
        return total
