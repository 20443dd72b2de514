"""Autoencoder configuration (paper §3.1, A.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from millivid.train.config import TrainConfig


@dataclass(frozen=True)
class AutoencoderConfig:
    """ViT encoder/decoder over an image pyramid; level l has (H/p/2^l) x (W/p/2^l) tokens."""

    image_size: int = 64
    patch: int = 8
    levels: int = 4
    channels: int = 16  # C latent channels per token
    width: int = 256
    depth: int = 6  # transformer blocks in the encoder and in the decoder (each)
    heads: int = 4
    kind: Literal["hierarchical", "cascaded"] = "hierarchical"
    # training loss: MSE over the whole output pyramid, plus these optional terms
    gradient_weight: float = 0.0  # L1 of image gradients, every level of the output pyramid
    # decode every level of every example (the encoder runs once), not one sampled level per
    # example as in the paper: each level sees every example, the decoder does L x the work
    all_levels: bool = False
    lpips_weight: float = 0.0  # LPIPS (AlexNet) on the top image; needs the two files below
    lpips_alexnet: str = ""  # alexnet-owt-7be5be79.pth (or env MILLIVID_ALEXNET_WEIGHTS)
    lpips_linear: str = ""  # LPIPS v0.1 alex.pth (or env MILLIVID_LPIPS_WEIGHTS)

    def tokens_per_frame(self) -> tuple[int, ...]:
        """N_l for every level l (finest first)."""
        side = self.image_size // self.patch
        return tuple((side >> lvl) ** 2 for lvl in range(self.levels))


PRESETS = {
    "tiny": AutoencoderConfig(
        image_size=32, patch=8, levels=3, channels=4, width=64, depth=2, heads=2
    ),
    # ~6.7M parameters: 13.4 MB as bf16 safetensors (the repository keeps it, <= 16 MB)
    "mini": AutoencoderConfig(
        image_size=64, patch=8, levels=4, channels=16, width=192, depth=6, heads=3
    ),
    # ViT-B encoder and decoder (paper A.2)
    "paper": AutoencoderConfig(
        image_size=256, patch=16, levels=4, channels=32, width=768, depth=12, heads=12
    ),
}

# paper A.2: 128k steps at batch 224 per device (x8 GPUs); mini: one H100 for a few minutes
TRAIN_PRESETS = {
    "tiny": TrainConfig(steps=200, batch_size=8, warmup_steps=20, checkpoint_every=100),
    "mini": TrainConfig(steps=6_000, batch_size=256, warmup_steps=200, checkpoint_every=1_000),
    "paper": TrainConfig(steps=128_000, batch_size=224, warmup_steps=2_000, checkpoint_every=2_000),
}
