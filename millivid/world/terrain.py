"""Seeded procedural voxel worlds, batched: height-field terrain, water, trees and landmarks.

A world is a torus of ``world_size``^2 columns (x, y horizontal, z up; the agent can run at most
``frames * speed`` blocks, well under half the torus, so it never sees the wrap). Each column is
one packed int64: the ground (solid up to height ``h``, its surface kind on top, dirt/sand under
it, stone deeper) plus at most one *object* segment ``[ob, ot)`` made of kind ``k1`` below
``sp`` and ``k2`` from ``sp`` up (a tree trunk: wood then leaves; a canopy: leaves only; a
landmark pillar: one colour with a cap of another). Everything random comes from a CPU
``torch.Generator`` seeded by the video seed alone, so a world does not depend on the batch, the
device or the other seeds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from millivid.world.blocks import KIND, LANDMARK_KINDS
from millivid.world.config import WorldConfig

# packed column layout: (name, bit offset, bits)
FIELDS = {
    "h": (0, 6),
    "surface": (6, 4),
    "ob": (10, 6),
    "sp": (16, 6),
    "ot": (22, 6),
    "k1": (28, 4),
    "k2": (32, 4),
}
MAX_HEIGHT = 63


@dataclass
class World:
    """A batch of worlds: ``columns`` int64 [B, W*W] (row-major, index y*W + x); ``start`` float32
    [B, 3] (x, y, yaw in degrees) where the agent begins."""

    columns: torch.Tensor
    world_size: int
    start: torch.Tensor

    def field(self, name: str, cols: torch.Tensor | None = None) -> torch.Tensor:
        """One field of packed columns (all of them when ``cols`` is None), int64."""
        return unpack(self.columns if cols is None else cols, name)

    def lookup(self, b: torch.Tensor, ix: torch.Tensor, iy: torch.Tensor) -> torch.Tensor:
        """Packed column at integer cells (wrapping): b, ix, iy int64 [N] -> int64 [N]."""
        w = self.world_size
        return self.columns.view(-1)[b * (w * w) + (iy & (w - 1)) * w + (ix & (w - 1))]


def unpack(cols: torch.Tensor, name: str) -> torch.Tensor:
    """Field ``name`` (see ``FIELDS``) of packed int64 columns."""
    shift, bits = FIELDS[name]
    return (cols >> shift) & ((1 << bits) - 1)


def pack(**fields: torch.Tensor) -> torch.Tensor:
    """Packed int64 columns from int fields of one shape (missing fields are 0)."""
    out = None
    for name, value in fields.items():
        shift, bits = FIELDS[name]
        part = (value.long() & ((1 << bits) - 1)) << shift
        out = part if out is None else out | part
    assert out is not None
    return out


def seed_generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for one (seed, purpose) pair, independent of every other pair."""
    digest = hashlib.sha256(f"millivid-world:{stream}:{seed}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def periodic_noise(lattice: torch.Tensor, size: int) -> torch.Tensor:
    """Smooth periodic value noise: lattice float [B, n, n] -> float [B, size, size] in [0, 1]."""
    n = lattice.shape[-1]
    coords = torch.arange(size, device=lattice.device, dtype=torch.float32) * (n / size)
    i0 = coords.floor().long()
    f = coords - i0
    f = f * f * (3 - 2 * f)  # smoothstep
    i1 = (i0 + 1) % n
    rows0, rows1 = lattice[:, i0], lattice[:, i1]  # [B, size, n]
    fx = f[None, None, :]
    top = rows0[:, :, i0] * (1 - fx) + rows0[:, :, i1] * fx
    bot = rows1[:, :, i0] * (1 - fx) + rows1[:, :, i1] * fx
    fy = f[None, :, None]
    return top * (1 - fy) + bot * fy


def _heights(gens: list[torch.Generator], cfg: WorldConfig, device) -> torch.Tensor:
    """Ground heights int64 [B, W, W] from fractal value noise."""
    w = cfg.world_size
    total = torch.zeros(len(gens), w, w, device=device)
    for period, weight in zip(cfg.noise_periods, cfg.noise_weights, strict=True):
        n = max(1, w // period)
        lattice = torch.stack([torch.rand(n, n, generator=g) for g in gens]).to(device)
        total += weight * (2 * periodic_noise(lattice, w) - 1)
    total = total / sum(cfg.noise_weights) * 1.8  # fbm sums rarely reach +-1: stretch
    return (cfg.base_height + cfg.hill_amplitude * total).round().clamp(1, MAX_HEIGHT - 20).long()


def _surface(h: torch.Tensor, cfg: WorldConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(height with lakes flattened to sea level, surface kind), both int64 [B, W, W]."""
    kind = torch.full_like(h, KIND["grass"])
    kind = torch.where(h == cfg.sea_level + 1, KIND["sand"], kind)
    kind = torch.where(h >= cfg.stone_height, KIND["stone"], kind)
    kind = torch.where(h >= cfg.snow_height, KIND["snow"], kind)
    kind = torch.where(h <= cfg.sea_level, KIND["water"], kind)
    return h.clamp(min=cfg.sea_level), kind


def _jitter_sites(gen: torch.Generator, w: int, cell: int, margin: int, prob: float):
    """Jittered-grid sites ``(x, y)`` int64 [K] (one candidate per cell, kept with ``prob``)."""
    n = w // cell
    cy, cx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    span = max(1, cell - 2 * margin)
    ox = torch.randint(0, span, (n, n), generator=gen) + margin
    oy = torch.randint(0, span, (n, n), generator=gen) + margin
    keep = torch.rand(n, n, generator=gen) < prob
    return (cx * cell + ox)[keep], (cy * cell + oy)[keep]


def _place_trees(obj: dict, h, surface, gen, cfg: WorldConfig) -> None:
    """Write trees of one world into the object fields ``obj`` (int64 [W, W] each) in place."""
    w = cfg.world_size
    x, y = _jitter_sites(gen, w, cfg.tree_cell, 1, cfg.tree_prob)
    x, y = x.to(h.device), y.to(h.device)
    grass = surface[y, x] == KIND["grass"]
    x, y = x[grass], y[grass]
    base = h[y, x]
    t = cfg.trunk_height
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            cx, cy = (x + dx) % w, (y + dy) % w
            if dx == 0 and dy == 0:
                ob, sp = base, base + t
            else:  # canopy: leaves from the trunk's last block, corners one block thinner
                corner = dx != 0 and dy != 0
                ob = torch.maximum(base + t - 1 + int(corner), h[cy, cx])
                sp = ob
            obj["ob"][cy, cx] = ob
            obj["sp"][cy, cx] = sp
            obj["ot"][cy, cx] = base + t + 2
            obj["k1"][cy, cx] = KIND["wood"]
            obj["k2"][cy, cx] = KIND["leaves"]


def _place_landmarks(obj: dict, h, gen, cfg: WorldConfig) -> None:
    """Write 3x3 landmark pillars (body colour + cap colour) in place, clearing trees around."""
    w = cfg.world_size
    x, y = _jitter_sites(gen, w, cfg.landmark_cell, 4, cfg.landmark_prob)
    k = x.numel()
    height = torch.randint(
        cfg.landmark_min_height, cfg.landmark_max_height + 1, (k,), generator=gen
    )
    palette = torch.tensor(LANDMARK_KINDS)
    body = torch.randint(0, len(palette), (k,), generator=gen)
    cap = (body + torch.randint(1, len(palette), (k,), generator=gen)) % len(palette)
    x, y, height = x.to(h.device), y.to(h.device), height.to(h.device)
    for dy in range(-2, 5):  # clear neighbouring canopies so the pillar stands free
        for dx in range(-2, 5):
            obj["ot"][(y + dy) % w, (x + dx) % w] = 0
            obj["ob"][(y + dy) % w, (x + dx) % w] = 0
    foot = [((x + dx) % w, (y + dy) % w) for dy in range(3) for dx in range(3)]
    top = torch.stack([h[cy, cx] for cx, cy in foot]).amax(0) + height
    top = top.clamp(max=MAX_HEIGHT)
    for cx, cy in foot:
        obj["ob"][cy, cx] = h[cy, cx]
        obj["sp"][cy, cx] = top - 3
        obj["ot"][cy, cx] = top
        obj["k1"][cy, cx] = palette[body].to(h.device)
        obj["k2"][cy, cx] = palette[cap].to(h.device)


def generate_worlds(seeds: list[int], cfg: WorldConfig, device="cpu") -> World:
    """Build the worlds of ``seeds`` on ``device`` (one per seed, same seed => same world)."""
    w = cfg.world_size
    if w & (w - 1) or w < 64:
        raise ValueError(f"world.world_size={w} must be a power of two >= 64")
    gens = [seed_generator(int(s), "terrain") for s in seeds]
    h, surface = _surface(_heights(gens, cfg, device), cfg)
    columns, starts = [], []
    for i, gen in enumerate(gens):
        obj = {k: torch.zeros(w, w, dtype=torch.long, device=device) for k in FIELDS}
        _place_trees(obj, h[i], surface[i], gen, cfg)
        _place_landmarks(obj, h[i], gen, cfg)
        start = torch.rand(3, generator=gen) * torch.tensor([w, w, 360.0])
        sx, sy, r = int(start[0]), int(start[1]), cfg.spawn_clear_radius
        for dy in range(-r, r + 1):  # the agent never spawns inside a trunk or pillar
            obj["ot"][(sy + dy) % w, [(sx + dx) % w for dx in range(-r, r + 1)]] = 0
        obj["ob"] = torch.where(obj["ot"] > 0, obj["ob"], 0)
        columns.append(
            pack(
                h=h[i],
                surface=surface[i],
                ob=obj["ob"],
                sp=obj["sp"],
                ot=obj["ot"],
                k1=obj["k1"],
                k2=obj["k2"],
            ).view(-1)
        )
        starts.append(start)
    return World(torch.stack(columns), w, torch.stack(starts).to(device))
