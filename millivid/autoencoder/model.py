"""Hierarchical ViT autoencoder over an image pyramid, and its cascaded variant (paper §3.1, A.2).

Encoder: the frame becomes a pyramid of L images (each halving H and W); every image is
patchified with the SAME patch kernel, so level l has (H/p/2^l) x (W/p/2^l) tokens; tokens get
2-D sin/cos row/column embeddings (coarse tokens at the centre of their 2^l block, so all levels
share one spatial frame) plus a learned level embedding; one ViT encodes all levels together and
emits C channels per token. Decoder: decodes ONE level: the other levels' tokens are zero, the
same embeddings are added, a ViT with AdaLN on the level embedding runs, and every level's output
tokens are unpatchified into the output pyramid (the top image is the reconstruction).

Cascaded variant (``kind="cascaded"``, paper §5 Q1): one learned level; coarser levels are the
level-0 latents mean-pooled by 2^l, decoded through the same interface. ``kind="pooled"``: a
hierarchical autoencoder whose coarser levels are replaced by its own level 0 mean-pooled (the
encoder runs as trained, so level 0 is the hierarchical one; its decoder never saw pooled
latents, so only level 0 decodes).

Latents are normalized per level and channel by statistics stored in the weights
(``calibrate``), so the diffusion model sees roughly unit variance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from millivid.autoencoder.config import AutoencoderConfig
from millivid.nn import block_centre, modulate, sincos


def sincos_2d(rows: Tensor, cols: Tensor, dim: int) -> Tensor:
    """[N] float rows/cols -> [N, dim] sin/cos embedding (half the channels per axis)."""
    half = 2 * (dim // 4)
    return torch.cat([sincos(rows, half), sincos(cols, half)], dim=-1)


def level_grid(side: int, level: int) -> tuple[Tensor, Tensor]:
    """Row/col of every token of ``level`` (row-major) in level-0 token units (block centres)."""
    idx = block_centre(torch.arange(side >> level), torch.tensor(level))
    rows, cols = torch.meshgrid(idx, idx, indexing="ij")
    return rows.reshape(-1), cols.reshape(-1)


class Block(nn.Module):
    """Pre-norm transformer block with optional AdaLN-Zero modulation from ``cond`` [B, D]."""

    def __init__(self, width: int, heads: int, adaptive: bool) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=not adaptive)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=not adaptive)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )
        self.modulation = nn.Linear(width, 6 * width) if adaptive else None
        if self.modulation is not None:
            nn.init.zeros_(self.modulation.weight)
            nn.init.zeros_(self.modulation.bias)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        if self.modulation is not None and cond is not None:
            shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(cond))[
                :, None
            ].chunk(6, -1)
        else:
            shift1 = scale1 = shift2 = scale2 = 0.0
            gate1 = gate2 = 1.0
        h = modulate(self.norm1(x), shift1, scale1)
        q, k, v = rearrange(self.qkv(h), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        attn = rearrange(F.scaled_dot_product_attention(q, k, v), "b h n d -> b n (h d)")
        x = x + gate1 * self.proj(attn)
        h = modulate(self.norm2(x), shift2, scale2)
        return x + gate2 * self.mlp(h)


class HierarchicalAutoencoder(nn.Module):
    """``encode(frames uint8 [B,H,W,3]) -> [B,h_l,w_l,C] per level``; ``decode(latent, level)``."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        if cfg.image_size % (cfg.patch * 2 ** (cfg.levels - 1)):
            raise ValueError(
                f"ae.image_size={cfg.image_size} must be divisible by ae.patch * 2^(levels-1) = "
                f"{cfg.patch * 2 ** (cfg.levels - 1)}"
            )
        self.cfg = cfg
        self.side = cfg.image_size // cfg.patch
        self.enc_levels = 1 if cfg.kind == "cascaded" else cfg.levels  # levels the ViT reads
        self.learned_levels = cfg.levels if cfg.kind == "hierarchical" else 1  # the rest: pooled
        d, pp = cfg.width, cfg.patch * cfg.patch * 3
        self.patch_embed = nn.Linear(pp, d)  # shared by every pyramid level
        self.enc_level = nn.Parameter(torch.randn(cfg.levels, d) * 0.02)
        self.encoder = nn.ModuleList(Block(d, cfg.heads, False) for _ in range(cfg.depth))
        self.enc_norm = nn.LayerNorm(d)
        self.to_latent = nn.Linear(d, cfg.channels)
        self.from_latent = nn.Linear(cfg.channels, d)
        self.dec_level = nn.Parameter(torch.randn(cfg.levels, d) * 0.02)
        self.decoder = nn.ModuleList(Block(d, cfg.heads, True) for _ in range(cfg.depth))
        self.dec_norm = nn.LayerNorm(d, elementwise_affine=False)
        self.to_pixels = nn.Linear(d, pp)
        rows, cols, lvl = [], [], []
        for level in range(cfg.levels):
            r, c = level_grid(self.side, level)
            rows.append(r)
            cols.append(c)
            lvl.append(torch.full_like(r, level, dtype=torch.long))
        self.register_buffer(
            "pos", sincos_2d(torch.cat(rows), torch.cat(cols), d), persistent=False
        )
        self.register_buffer("token_level", torch.cat(lvl), persistent=False)
        # per level and channel: latent = (raw - mean) / std  (set by ``calibrate``)
        self.register_buffer("latent_mean", torch.zeros(cfg.levels, cfg.channels))
        self.register_buffer("latent_std", torch.ones(cfg.levels, cfg.channels))

    # -- shapes ---------------------------------------------------------------------------
    def tokens_per_level(self) -> list[int]:
        return [(self.side >> lvl) ** 2 for lvl in range(self.cfg.levels)]

    def level_shape(self, level: int) -> tuple[int, int]:
        return (self.side >> level, self.side >> level)

    def _slices(self) -> list[slice]:
        out, start = [], 0
        for n in self.tokens_per_level():
            out.append(slice(start, start + n))
            start += n
        return out

    # -- pyramid --------------------------------------------------------------------------
    def pyramid(self, images: Tensor) -> list[Tensor]:
        """images float [B,3,H,W] in [-1,1] -> L images halving H and W (area downsampling)."""
        return self.pyramid_of(images, self.cfg.levels)

    @staticmethod
    def pyramid_of(images: Tensor, levels: int) -> list[Tensor]:
        """``levels`` images, each an area-downsampled half of the previous one."""
        return [images if lvl == 0 else F.avg_pool2d(images, 2**lvl) for lvl in range(levels)]

    def _patchify(self, image: Tensor) -> Tensor:
        p = self.cfg.patch
        return rearrange(image, "b c (h p) (w q) -> b (h w) (p q c)", p=p, q=p)

    def _unpatchify(self, tokens: Tensor, side: int) -> Tensor:
        p = self.cfg.patch
        return rearrange(tokens, "b (h w) (p q c) -> b c (h p) (w q)", h=side, w=side, p=p, q=p)

    # -- encoder --------------------------------------------------------------------------
    def encode_raw(self, images: Tensor) -> list[Tensor]:
        """images float [B,3,H,W] in [-1,1] -> unnormalized latents [B,h_l,w_l,C] per level."""
        pyr = self.pyramid(images)[: self.enc_levels]
        tokens = torch.cat([self._patchify(im) for im in pyr], dim=1)
        n = tokens.shape[1]
        x = self.patch_embed(tokens) + self.pos[:n] + self.enc_level[self.token_level[:n]]
        for block in self.encoder:
            x = block(x)
        z = self.to_latent(self.enc_norm(x))
        levels = [
            rearrange(z[:, s], "b (h w) c -> b h w c", h=self.side >> i)
            for i, s in enumerate(self._slices()[: self.enc_levels])
        ]
        del levels[self.learned_levels :]
        for lvl in range(self.learned_levels, self.cfg.levels):  # mean-pooled level 0
            pooled = F.avg_pool2d(rearrange(levels[0], "b h w c -> b c h w"), 2**lvl)
            levels.append(rearrange(pooled, "b c h w -> b h w c"))
        return levels

    def encode(self, frames: Tensor) -> list[Tensor]:
        """frames uint8 [B,H,W,3] -> normalized latents, one [B,h_l,w_l,C] per level."""
        raw = self.encode_raw(to_images(frames, self.cfg.image_size))
        return [(z - self.latent_mean[i]) / self.latent_std[i] for i, z in enumerate(raw)]

    # -- decoder --------------------------------------------------------------------------
    def decode_tokens(self, tokens: Tensor, level: Tensor) -> list[Tensor]:
        """Unnormalized latent tokens of every level [B, N_total, C] and the level to decode per
        example (int64 [B]) -> output pyramid, L images [B,3,H/2^l,W/2^l] in [-1,1] (index 0 =
        the frame). The other levels' tokens are zeroed here (paper §3.1)."""
        keep = (self.token_level[None, :] == level[:, None]).to(tokens.dtype)  # [B, N_total]
        h = self.from_latent(tokens * keep[..., None]) + self.pos + self.dec_level[self.token_level]
        cond = self.dec_level[level]
        for block in self.decoder:
            h = block(h, cond)
        out = self.to_pixels(self.dec_norm(h))
        return [self._unpatchify(out[:, s], self.side >> i) for i, s in enumerate(self._slices())]

    def tokens_of(self, levels: list[Tensor]) -> Tensor:
        """Per-level latents [B,h_l,w_l,C] -> all tokens [B, N_total, C] (row-major per level)."""
        return torch.cat([rearrange(z, "b h w c -> b (h w) c") for z in levels], dim=1)

    def decode(self, latent: Tensor, level: int) -> Tensor:
        """Normalized latents [B,h_l,w_l,C] of ``level`` -> frames uint8 [B,H,W,3]."""
        return to_frames(self.decode_float(latent, level))

    def decode_float(self, latent: Tensor, level: int) -> Tensor:
        """Normalized latents [B,h_l,w_l,C] of ``level`` -> image float [B,3,H,W] in [-1,1]."""
        expected = self.level_shape(level)
        if tuple(latent.shape[1:3]) != expected or latent.shape[-1] != self.cfg.channels:
            raise ValueError(
                f"decode level {level}: expected latents [B, {expected[0]}, {expected[1]}, "
                f"{self.cfg.channels}], got {tuple(latent.shape)}"
            )
        raw = latent * self.latent_std[level] + self.latent_mean[level]
        b = latent.shape[0]
        tokens = latent.new_zeros(b, self._slices()[-1].stop, self.cfg.channels)
        tokens[:, self._slices()[level]] = rearrange(raw, "b h w c -> b (h w) c")
        lv = torch.full((b,), level, dtype=torch.long, device=latent.device)
        return self.decode_tokens(tokens, lv)[0]

    def forward(self, images: Tensor, level: Tensor | None) -> list[Tensor]:
        """Training pass: images float [B,3,H,W] in [-1,1], level int64 [B] -> output pyramid
        decoded from each example's level (unnormalized latents, as in training). ``level`` None:
        every level of every example, [L*B, ...] level-major (the encoder runs once)."""
        tokens = self.tokens_of(self.encode_raw(images))
        if level is None:
            b, n = images.shape[0], self.cfg.levels
            level = torch.arange(n, device=images.device).repeat_interleave(b)
            tokens = tokens.repeat(n, 1, 1)
        return self.decode_tokens(tokens, level)

    def is_calibrated(self) -> bool:
        """Whether ``calibrate`` has set the latent statistics (they are not all mean 0, std 1,
        which no trained encoder's latents have)."""
        return bool(self.latent_mean.any() or (self.latent_std != 1).any())

    @torch.no_grad()
    def calibrate(self, frames: Tensor, batch: int = 256) -> None:
        """Set the per-level, per-channel latent statistics from frames uint8 [N,H,W,3]."""
        sums = None
        count = 0
        for i in range(0, len(frames), batch):
            raw = self.encode_raw(to_images(frames[i : i + batch], self.cfg.image_size))
            stats = [
                (z.double().sum((0, 1, 2)), (z.double() ** 2).sum((0, 1, 2)), z[..., 0].numel())
                for z in raw
            ]
            sums = (
                stats
                if sums is None
                else [
                    (a + s, b + q, n + m) for (a, b, n), (s, q, m) in zip(sums, stats, strict=True)
                ]
            )
            count += 1
        for lvl, (s, q, n) in enumerate(sums):
            mean = s / n
            self.latent_mean[lvl] = mean.float()
            self.latent_std[lvl] = (q / n - mean**2).clamp_min(1e-8).sqrt().float()


def to_images(frames: Tensor, size: int) -> Tensor:
    """uint8 [B,H,W,3] -> float [B,3,H,W] in [-1,1]; errors name the expected shape."""
    if (
        frames.dim() != 4
        or frames.shape[-1] != 3
        or frames.shape[1] != size
        or frames.shape[2] != size
    ):
        raise ValueError(
            f"frames: expected uint8 [B, {size}, {size}, 3], got {tuple(frames.shape)}"
        )
    return frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_frames(images: Tensor) -> Tensor:
    """float [B,3,H,W] in [-1,1] -> uint8 [B,H,W,3]."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
