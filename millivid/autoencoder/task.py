"""The autoencoder's training task for the shared trainer (paper §3.1, A.2).

One level is sampled per example (``all_levels``: every level of every example); the whole
output pyramid is supervised with MSE against the input pyramid, plus optional terms
(``AutoencoderConfig``): ``gradient_weight`` x image-gradient L1 on every output level, and
``lpips_weight`` x LPIPS on the top image (as in the paper; it needs the published AlexNet/LPIPS
files, which are never downloaded — see docs/AUTOENCODER.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from millivid.autoencoder.config import AutoencoderConfig
from millivid.autoencoder.losses import PerceptualLoss, gradient_l1, pyramid_mse
from millivid.autoencoder.model import HierarchicalAutoencoder, to_images


class AutoencoderTask:
    """``TrainTask``: random frames from an in-memory uint8 frame bank [N, H, W, 3]."""

    items_name = "frames"

    def __init__(self, cfg: AutoencoderConfig, frames: Tensor, batch_size: int) -> None:
        if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"frames: expected uint8 [N, H, W, 3], got {frames.dtype} {tuple(frames.shape)}"
            )
        self.cfg, self.frames, self.items_per_batch = cfg, frames, batch_size
        self.perceptual = (
            PerceptualLoss.from_files(cfg.lpips_alexnet, cfg.lpips_linear)
            if cfg.lpips_weight > 0
            else None
        )

    def build_model(self) -> HierarchicalAutoencoder:
        return HierarchicalAutoencoder(self.cfg)

    def batch(self, step: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        idx = torch.randint(len(self.frames), (self.items_per_batch,), generator=generator)
        level = torch.randint(self.cfg.levels, (self.items_per_batch,), generator=generator)
        return self.frames[idx], level

    def loss(self, model, batch, device) -> tuple[Tensor, dict[str, Tensor]]:
        frames, level = (x.to(device, non_blocking=True) for x in batch)
        images = to_images(frames, self.cfg.image_size)
        targets = HierarchicalAutoencoder.pyramid_of(images, self.cfg.levels)
        if self.cfg.all_levels:  # every level decoded: outputs are [L*B, ...], level-major
            outputs = model(images, None)
            targets = [t.repeat(self.cfg.levels, 1, 1, 1) for t in targets]
        else:
            outputs = model(images, level)
        per_level = pyramid_mse(outputs, targets)
        loss = sum(per_level)
        metrics = {"mse_top": per_level[0].detach()}  # read by the trainer when it logs
        if self.cfg.gradient_weight > 0:
            grad = sum(gradient_l1(o, t) for o, t in zip(outputs, targets, strict=True))
            loss = loss + self.cfg.gradient_weight * grad
            metrics["grad_l1"] = grad.detach()
        if self.perceptual is not None:
            self.perceptual.to(images.device)
            lpips = self.perceptual(outputs[0], targets[0])
            loss = loss + self.cfg.lpips_weight * lpips
            metrics["lpips_top"] = lpips.detach()
        return loss, metrics
