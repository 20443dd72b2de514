"""DINOv2 class-token cosine similarity (paper Table 1), with a small in-project ViT.

Why in-project: torch.hub would fetch code from the network and neither timm nor transformers is a
dependency; DINOv2's ViT-S/14 is ~60 lines of standard blocks. ``DinoViT`` uses the official
state-dict keys of ``dinov2_vits14_pretrain.pth`` (cls_token, pos_embed, mask_token,
patch_embed.proj, blocks.N.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma},
norm) and reads width/depth/patch size from the file, so ViT-B/L/G files load too.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from millivid.weights.files import load_into, load_state_dict_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224  # frames are resized to this (16 x 16 patches of 14 px)


class _LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # [B, heads, N, d_head]
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.ls1 = _LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, 4 * dim)
        self.ls2 = _LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoViT(nn.Module):
    """DINOv2 ViT (no registers). images uint8 [N, H, W, 3] -> class token [N, dim]."""

    def __init__(self, dim: int = 384, depth: int = 12, patch: int = 14, grid: int = 37) -> None:
        super().__init__()
        self.patch = patch
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, stride=patch)
        self.blocks = nn.ModuleList(_Block(dim, dim // 64) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_file(cls, path: Path) -> DinoViT:
        """Build the ViT that fits the official checkpoint at ``path`` and load it."""
        state = load_state_dict_file(path)
        try:
            dim = state["cls_token"].shape[-1]
            patch = state["patch_embed.proj.weight"].shape[-1]
            grid = math.isqrt(state["pos_embed"].shape[1] - 1)
        except KeyError as err:
            raise ValueError(
                f"weight file {path} is not a DINOv2 state dict: no key {err}"
            ) from err
        depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
        model = cls(dim=dim, depth=depth, patch=patch, grid=grid)
        load_into(model, state, path)
        return model.eval()

    def _positions(self, grid: int) -> torch.Tensor:
        """Position embeddings for a grid x grid patch layout (bicubic, as DINOv2). [1, 1+g², D]."""
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        n = math.isqrt(patch_pos.shape[1])
        if n == grid:
            return self.pos_embed
        patch_pos = patch_pos.reshape(1, n, n, -1).permute(0, 3, 1, 2)
        scale = (grid + 0.1) / n  # DINOv2's interpolate_offset = 0.1
        patch_pos = F.interpolate(patch_pos, scale_factor=scale, mode="bicubic", antialias=False)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)
        return torch.cat([cls_pos, patch_pos], dim=1)

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 255.0  # [N, 3, H, W]
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", align_corners=False)
        x = (x - self.mean) / self.std
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)  # [N, g², D]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self._positions(INPUT_SIZE // self.patch)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]


def dino_cosine(model: DinoViT, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of DINOv2 class tokens per frame. uint8 [N, H, W, 3] x 2 -> [N]."""
    return F.cosine_similarity(model(pred), model(gt), dim=-1)
