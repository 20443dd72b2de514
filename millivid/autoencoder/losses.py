"""Reconstruction loss terms of the autoencoder (paper §3.1, A.2).

- ``pyramid_mse``: MSE over every image of the output pyramid (the paper's main term).
- ``gradient_l1``: weight-free L1 between finite-difference image gradients of output and target
  (sharpens edges that plain MSE blurs; measured in docs/AUTOENCODER.md).
- ``PerceptualLoss``: LPIPS (AlexNet) on the top image, differentiable, from the published weight
  files. It reuses the AlexNet trunk and file loading of ``millivid.weights.lpips`` (written
  without torchvision; the files load unchanged), so training and evaluation measure the same thing.

All images are float [B, 3, H, W] in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from millivid.weights.files import MissingWeightsError, weight_path
from millivid.weights.lpips import LPIPS


def pyramid_mse(outputs: list[Tensor], targets: list[Tensor]) -> list[Tensor]:
    """Per-level MSE (float32 scalars) between the output pyramid and the input pyramid."""
    return [F.mse_loss(o.float(), t.float()) for o, t in zip(outputs, targets, strict=True)]


def image_gradients(images: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences of [B, C, H, W]: along W -> [B, C, H, W-1], along H -> [B, C, H-1, W]."""
    return images[..., :, 1:] - images[..., :, :-1], images[..., 1:, :] - images[..., :-1, :]


def gradient_l1(output: Tensor, target: Tensor) -> Tensor:
    """Mean L1 between the image gradients of ``output`` and ``target`` [B, C, H, W] (scalar).

    Images of 1 pixel have no gradient; their term is 0.
    """
    if output.shape[-1] < 2 or output.shape[-2] < 2:
        return output.float().sum() * 0.0
    (ox, oy), (tx, ty) = image_gradients(output.float()), image_gradients(target.float())
    return 0.5 * ((ox - tx).abs().mean() + (oy - ty).abs().mean())


class PerceptualLoss(nn.Module):
    """Differentiable LPIPS: pred, target float [B, 3, H, W] in [-1, 1] -> mean distance (scalar).

    The weights are frozen and are not part of the autoencoder (nor of its optimizer or checkpoint).
    Frames smaller than 32 x 32 are bilinearly upsampled to 32 x 32 so AlexNet's strides fit.
    """

    def __init__(self, lpips: nn.Module) -> None:
        super().__init__()
        self.lpips = lpips.eval().requires_grad_(False)

    @classmethod
    def from_files(cls, alexnet: str | Path, linear: str | Path) -> PerceptualLoss:
        """Load ``alexnet-owt-7be5be79.pth`` (torchvision layout) and LPIPS ``alex.pth``.

        Errors name the missing or unreadable file and the config keys that set it.
        """
        try:
            paths = weight_path("alexnet", str(alexnet)), weight_path("lpips", str(linear))
        except MissingWeightsError as err:
            raise MissingWeightsError(
                f"LPIPS loss (ae.lpips_weight > 0): {err}. Set the files with "
                "--set ae.lpips_alexnet=PATH --set ae.lpips_linear=PATH"
            ) from err
        return cls(LPIPS.from_files(*paths))

    def train(self, mode: bool = True) -> PerceptualLoss:
        """The LPIPS network always stays in eval mode."""
        super().train(mode)
        self.lpips.eval()
        return self

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape[-1] < 32 or pred.shape[-2] < 32:
            size = (max(32, pred.shape[-2]), max(32, pred.shape[-1]))
            pred = F.interpolate(pred.float(), size=size, mode="bilinear", align_corners=False)
            target = F.interpolate(target.float(), size=size, mode="bilinear", align_corners=False)
        lp = self.lpips
        taps_p = lp.net((pred.float() - lp.shift) / lp.scale)
        with torch.no_grad():
            taps_t = lp.net((target.float() - lp.shift) / lp.scale)
        total = pred.new_zeros((), dtype=torch.float32)
        for lin, a, b in zip(lp.lins, taps_p, taps_t, strict=True):
            a = a / (a.square().sum(1, keepdim=True) + 1e-20).sqrt()
            b = b / (b.square().sum(1, keepdim=True) + 1e-20).sqrt()
            total = total + lin.model((a - b).square()).mean()
        return total
