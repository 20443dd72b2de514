"""Block kinds (label ids) and their deterministic per-face procedural textures.

Textures do not depend on the world seed: a block kind looks the same in every video, as in
Minecraft. Each kind has three faces (top, side, bottom) of ``TEXELS`` x ``TEXELS`` texels.
"""

from __future__ import annotations

import math

import torch

# label id -> name; 0 is sky. Ids 9.. are landmark colours (pillars that make places memorable).
BLOCK_KINDS: tuple[str, ...] = (
    "sky",
    "grass",
    "dirt",
    "stone",
    "sand",
    "water",
    "wood",
    "leaves",
    "snow",
    "red",
    "orange",
    "yellow",
    "cyan",
    "blue",
    "magenta",
    "white",
)
KIND = {name: i for i, name in enumerate(BLOCK_KINDS)}
LANDMARK_KINDS: tuple[int, ...] = tuple(range(KIND["red"], len(BLOCK_KINDS)))
TEXELS = 16
FACE_TOP, FACE_SIDE, FACE_BOTTOM = 0, 1, 2

_LANDMARK_RGB = {
    "red": (200, 40, 40),
    "orange": (235, 130, 30),
    "yellow": (235, 210, 40),
    "cyan": (40, 200, 210),
    "blue": (45, 70, 210),
    "magenta": (200, 50, 190),
    "white": (235, 235, 230),
}


def _value_noise(gen: torch.Generator, cells: int) -> torch.Tensor:
    """Smooth periodic noise in [0, 1]: float [TEXELS, TEXELS] from a cells x cells lattice."""
    lattice = torch.rand(cells, cells, generator=gen)
    coords = (torch.arange(TEXELS) + 0.5) * cells / TEXELS - 0.5
    i0 = coords.floor().long()
    f = coords - i0
    f = f * f * (3 - 2 * f)
    i0, i1 = i0 % cells, (i0 + 1) % cells
    top = lattice[i0][:, i0] * (1 - f)[None] + lattice[i0][:, i1] * f[None]
    bot = lattice[i1][:, i0] * (1 - f)[None] + lattice[i1][:, i1] * f[None]
    return top * (1 - f)[:, None] + bot * f[:, None]


def _shade(rgb: tuple[int, int, int], amount: torch.Tensor) -> torch.Tensor:
    """Colour times a per-texel brightness: float [TEXELS, TEXELS, 3]."""
    return torch.tensor(rgb, dtype=torch.float32) * amount[..., None]


def _speckled(gen, rgb, contrast=0.25, cells=8, fine=0.12) -> torch.Tensor:
    """Base colour with blotches and per-texel grain (dirt, stone, sand, grass)."""
    blotch = _value_noise(gen, cells) - 0.5
    grain = torch.rand(TEXELS, TEXELS, generator=gen) - 0.5
    return _shade(rgb, 1.0 + contrast * 2 * blotch + fine * 2 * grain)


def _bevel(tex: torch.Tensor, dark: float = 0.72, light: float = 1.12) -> torch.Tensor:
    """Darken the bottom/right edge texels and lighten the top/left ones so blocks read as cubes."""
    out = tex.clone()
    out[0, :] *= light
    out[:, 0] *= light
    out[-1, :] *= dark
    out[:, -1] *= dark
    return out


def _grass_side(gen, dirt: torch.Tensor, grass: torch.Tensor) -> torch.Tensor:
    """Dirt with a jagged green band on top."""
    depth = 3 + (torch.rand(TEXELS, generator=gen) * 3).long()  # band depth per column
    rows = torch.arange(TEXELS)[:, None]
    return torch.where((rows < depth[None, :])[..., None], grass, dirt)


def _wood_side(gen) -> torch.Tensor:
    """Bark: vertical dark grooves on brown."""
    cols = torch.arange(TEXELS).float()
    grooves = 0.75 + 0.25 * torch.cos(cols * 2 * math.pi / 4 + torch.rand(1, generator=gen) * 6)
    wobble = _value_noise(gen, 4) * 0.25
    return _shade((110, 80, 45), grooves[None, :] * (0.9 + wobble))


def _wood_top() -> torch.Tensor:
    """Tree rings: concentric bands around the centre."""
    yy, xx = torch.meshgrid(torch.arange(TEXELS), torch.arange(TEXELS), indexing="ij")
    r = torch.sqrt((xx - 7.5) ** 2 + (yy - 7.5) ** 2)
    rings = 0.8 + 0.2 * torch.cos(r * 2 * math.pi / 3)
    return _shade((170, 135, 85), rings)


def _leaves(gen) -> torch.Tensor:
    """Leaves: clustered bright and dark clumps (high contrast, like Minecraft leaves)."""
    clumps = _value_noise(gen, 6)
    holes = torch.rand(TEXELS, TEXELS, generator=gen) < 0.18
    amount = 0.65 + 0.6 * clumps
    amount = torch.where(holes, torch.full_like(amount, 0.35), amount)
    return _shade((55, 125, 40), amount)


def _water(gen) -> torch.Tensor:
    """Water: blue with light diagonal ripples."""
    yy, xx = torch.meshgrid(torch.arange(TEXELS), torch.arange(TEXELS), indexing="ij")
    phase = torch.rand(1, generator=gen) * 6
    ripple = torch.cos((xx + 2 * yy).float() * 2 * math.pi / 8 + phase)
    amount = 0.85 + 0.15 * (ripple > 0.6).float() + 0.05 * _value_noise(gen, 4)
    return _shade((45, 90, 190), amount)


def _landmark(gen, rgb, pattern: int) -> torch.Tensor:
    """Bright landmark block with one of a few bold patterns (bricks, stripes, diamond, checker)."""
    yy, xx = torch.meshgrid(torch.arange(TEXELS), torch.arange(TEXELS), indexing="ij")
    if pattern == 0:  # bricks
        mortar = (yy % 4 == 0) | (((xx + 4 * ((yy // 4) % 2)) % 8) == 0)
    elif pattern == 1:  # horizontal stripes
        mortar = (yy // 2) % 4 == 0
    elif pattern == 2:  # diamond
        mortar = ((xx - 7.5).abs() + (yy - 7.5).abs()).round() % 6 == 0
    else:  # checker
        mortar = ((xx // 4) + (yy // 4)) % 2 == 0
    amount = torch.where(mortar, torch.full((TEXELS, TEXELS), 0.6), torch.ones(TEXELS, TEXELS))
    amount = amount * (1 + 0.08 * (torch.rand(TEXELS, TEXELS, generator=gen) - 0.5))
    return _bevel(_shade(rgb, amount))


def block_textures() -> torch.Tensor:
    """Texture atlas: uint8 [len(BLOCK_KINDS), 3 faces (top, side, bottom), TEXELS, TEXELS, 3]."""
    gen = torch.Generator().manual_seed(1234)  # fixed: textures are part of the world's look
    atlas = torch.zeros(len(BLOCK_KINDS), 3, TEXELS, TEXELS, 3)
    dirt = _bevel(_speckled(gen, (125, 88, 58), contrast=0.2, fine=0.2), 0.85, 1.05)
    grass_top = _speckled(gen, (85, 160, 55), contrast=0.22, cells=5, fine=0.2)
    stone = _bevel(_speckled(gen, (128, 128, 128), contrast=0.35, cells=6, fine=0.15))
    sand = _speckled(gen, (220, 205, 150), contrast=0.1, fine=0.12)
    snow = _speckled(gen, (240, 245, 250), contrast=0.05, fine=0.05)
    water = _water(gen)
    wood_side, wood_top = _wood_side(gen), _wood_top()
    leaves = _leaves(gen)
    faces = {
        "grass": (grass_top, _grass_side(gen, dirt, grass_top), dirt),
        "dirt": (dirt, dirt, dirt),
        "stone": (stone, stone, stone),
        "sand": (sand, sand, sand),
        "water": (water, water, water),
        "wood": (wood_top, wood_side, wood_top),
        "leaves": (leaves, leaves, leaves),
        "snow": (snow, _grass_side(gen, stone, snow), stone),
    }
    for i, (name, rgb) in enumerate(_LANDMARK_RGB.items()):
        tex = _landmark(gen, rgb, pattern=i % 4)
        faces[name] = (tex, tex, tex)
    for name, (top, side, bottom) in faces.items():
        atlas[KIND[name]] = torch.stack([top, side, bottom])
    return atlas.clamp(0, 255).round().to(torch.uint8)
