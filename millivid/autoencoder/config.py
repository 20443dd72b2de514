"""Autoencoder configuration (paper §3.1, A.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
    # hierarchical: every level learned (the paper); cascaded: one learned level, the coarser
    # ones its level 0 mean-pooled (trained so, Fig. 5); pooled: a trained hierarchical
    # autoencoder's own level 0 mean-pooled for the coarser levels (Fig. 6's cascaded model;
    # only level 0 decodes: ``derive_pooled``)
    kind: Literal["hierarchical", "cascaded", "pooled"] = "hierarchical"
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
