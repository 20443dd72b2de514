"""First-person renderer: vectorised ray marching through the column world, in torch.

Every pixel's ray walks the horizontal grid cell by cell (2-D DDA, Amanatides & Woo) and, in
each column it crosses, intersects the ground and the column's object segment in closed form
(side wall on entry, top or bottom face where the ray crosses that height inside the column).
All rays of a chunk step together; finished rays (hit, above every block and rising, or past
``view_distance``) are dropped every few steps so the work follows the live rays. Shading
(texture, directional face light, distance fog, sky) happens once per ray after marching.
Elementwise ops only, so the output is bitwise reproducible on one device.
"""

from __future__ import annotations

import math

import torch

from millivid.world.blocks import KIND, TEXELS, block_textures
from millivid.world.config import WorldConfig
from millivid.world.terrain import World, unpack

FACE_TOP, FACE_BOTTOM, FACE_X, FACE_Y = 0, 1, 2, 3
FAR = 1e30
_SKY_HORIZON = (200.0, 222.0, 245.0)
_SKY_ZENITH = (95.0, 145.0, 225.0)
_AMBIENT = 0.45
_COMPACT_EVERY = 4


def camera_rays(poses: torch.Tensor, size: int, fov_deg: float) -> torch.Tensor:
    """Unit ray directions float32 [N, size, size, 3] for poses float [N, 5] (x, y, z, yaw°, pitch°).

    Yaw 0 looks along +x, 90 along +y (left turns increase yaw); positive pitch looks up. Row 0 of
    the image is the top.
    """
    yaw, pitch = torch.deg2rad(poses[:, 3].double()), torch.deg2rad(poses[:, 4].double())
    cy, sy, cp, sp = yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin()
    forward = torch.stack([cp * cy, cp * sy, sp], -1)  # [N, 3]
    right = torch.stack([sy, -cy, torch.zeros_like(sy)], -1)
    up = torch.stack([-sp * cy, -sp * sy, cp], -1)
    half = math.tan(math.radians(fov_deg) / 2)
    grid = (torch.arange(size, dtype=torch.float64, device=poses.device) + 0.5) / size * 2 - 1
    u = grid[None, None, :, None] * half  # columns: left -> right
    v = -grid[None, :, None, None] * half  # rows: top -> bottom
    d = forward[:, None, None] + u * right[:, None, None] + v * up[:, None, None]
    return (d / d.norm(dim=-1, keepdim=True)).float()


def _axis_setup(o: torch.Tensor, d: torch.Tensor):
    """DDA start for one axis: (cell, step, t_delta, t_max) for origins/directions [R]."""
    cell = o.floor()
    step = torch.where(d >= 0, 1, -1)
    inv = torch.where(d.abs() > 1e-9, 1.0 / d.abs().clamp(min=1e-9), torch.full_like(d, FAR))
    first = torch.where(d >= 0, cell + 1 - o, o - cell)
    t_max = torch.where(d.abs() > 1e-9, first * inv, torch.full_like(d, FAR))
    return cell.long(), step, inv, t_max


def march(
    world: World, b: torch.Tensor, o: torch.Tensor, d: torch.Tensor, max_t: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """First hit along rays: b int64 [R] world index, o float [R, 3], d unit float [R, 3].

    Returns (t float32 [R], FAR where nothing is hit before ``max_t``; face int64 [R]: FACE_TOP,
    FACE_BOTTOM, FACE_X (wall crossed along x) or FACE_Y).
    """
    r = b.shape[0]
    out_t = torch.full((r,), FAR, device=d.device)
    out_face = torch.zeros(r, dtype=torch.long, device=d.device)
    tops = torch.maximum(world.field("h"), world.field("ot")).amax(1).float()  # [B]
    ix, sx, tdx, tmx = _axis_setup(o[:, 0], d[:, 0])
    iy, sy, tdy, tmy = _axis_setup(o[:, 1], d[:, 1])
    oz, dz = o[:, 2], d[:, 2]
    safe_dz = torch.where(dz.abs() > 1e-9, dz, torch.full_like(dz, 1e-9))
    state = dict(idx=torch.arange(r, device=d.device), b=b, ix=ix, iy=iy, sx=sx, sy=sy, tdx=tdx)
    state.update(tdy=tdy, tmx=tmx, tmy=tmy, oz=oz, dz=dz, sdz=safe_dz, ztop=tops[b])
    state.update(t=torch.zeros(r, device=d.device), xaxis=torch.zeros(r, dtype=torch.bool))
    state["xaxis"] = state["xaxis"].to(d.device)
    state.update(hit_t=torch.full((r,), FAR, device=d.device), face=torch.zeros_like(b))
    state["done"] = torch.zeros(r, dtype=torch.bool, device=d.device)
    max_steps = int(max_t * 1.5) + 4
    for k in range(max_steps):
        s = state
        t_next = torch.minimum(s["tmx"], s["tmy"])
        z_in = s["oz"] + s["t"] * s["dz"]
        z_out = s["oz"] + t_next * s["dz"]
        col = world.lookup(s["b"], s["ix"], s["iy"])
        h, ob, ot = unpack(col, "h").float(), unpack(col, "ob").float(), unpack(col, "ot").float()
        has_obj = ot > ob
        side = (z_in < h) | (has_obj & (z_in >= ob) & (z_in < ot))
        if k == 0:
            side = torch.zeros_like(side)  # the camera's own column: no wall to enter through
        top_o = has_obj & (z_in >= ot) & (z_out < ot)
        bot_o = has_obj & (z_in < ob) & (z_out >= ob)
        top_g = (z_in >= h) & (z_out < h)
        plane = torch.where(top_o, ot, torch.where(bot_o, ob, h))
        t_plane = (plane - s["oz"]) / s["sdz"]
        cap = top_o | bot_o | top_g
        hit_t = torch.where(side, s["t"], torch.where(cap, t_plane, FAR))
        face = torch.where(
            side,
            torch.where(s["xaxis"], FACE_X, FACE_Y),
            torch.where(bot_o & ~top_o, FACE_BOTTOM, FACE_TOP),
        )
        new_hit = (side | cap) & ~s["done"]
        s["hit_t"] = torch.where(new_hit, hit_t, s["hit_t"])
        s["face"] = torch.where(new_hit, face, s["face"])
        rising_out = (s["dz"] >= 0) & (z_out >= s["ztop"])
        s["done"] = s["done"] | new_hit | rising_out | (t_next > max_t)
        step_x = s["tmx"] < s["tmy"]
        s["ix"] = s["ix"] + torch.where(step_x, s["sx"], 0)
        s["iy"] = s["iy"] + torch.where(step_x, 0, s["sy"])
        s["t"] = t_next
        s["tmx"] = torch.where(step_x, s["tmx"] + s["tdx"], s["tmx"])
        s["tmy"] = torch.where(step_x, s["tmy"], s["tmy"] + s["tdy"])
        s["xaxis"] = step_x
        if k % _COMPACT_EVERY == _COMPACT_EVERY - 1 or k == max_steps - 1:
            finished = s["done"]
            out_t[s["idx"][finished]] = s["hit_t"][finished]
            out_face[s["idx"][finished]] = s["face"][finished]
            live = (~finished).nonzero().squeeze(1)
            if live.numel() == 0:
                break
            state = {key: v[live] for key, v in s.items()}
    return torch.where(out_t <= max_t, out_t, FAR), out_face


def block_kind(world: World, b, vx, vy, vz) -> torch.Tensor:
    """Block kind (label id) of voxels (int64 [R] each) that are known to be solid."""
    col = world.lookup(b, vx, vy)
    h, surface = unpack(col, "h"), unpack(col, "surface")
    depth = h - 1 - vz  # 0 = the surface block
    under = torch.where(surface == KIND["grass"], KIND["dirt"], surface)
    under = torch.where(surface == KIND["water"], KIND["sand"], under)
    under = torch.where(surface == KIND["snow"], KIND["stone"], under)
    ground = torch.where(depth == 0, surface, torch.where(depth <= 2, under, KIND["stone"]))
    obj = torch.where(vz < unpack(col, "sp"), unpack(col, "k1"), unpack(col, "k2"))
    return torch.where(vz < h, ground, obj)


def sky_colour(d: torch.Tensor) -> torch.Tensor:
    """Sky gradient float [R, 3] (0..255) for unit directions [R, 3]."""
    s = d[:, 2].clamp(0, 1).sqrt()[:, None]
    horizon = torch.tensor(_SKY_HORIZON, device=d.device)
    zenith = torch.tensor(_SKY_ZENITH, device=d.device)
    return horizon * (1 - s) + zenith * s


class Renderer:
    """Renders frames of a batch of worlds; holds the texture atlas on the device."""

    def __init__(self, cfg: WorldConfig, device: str | torch.device = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        self.atlas = block_textures().to(self.device).float()  # [K, 3, T, T, 3]
        el, az = math.radians(cfg.sun_elevation_deg), math.radians(cfg.sun_azimuth_deg)
        sun = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
        self.sun = torch.tensor(sun, device=self.device)

    def render(self, world: World, b: torch.Tensor, poses: torch.Tensor):
        """Frames for world indices b int64 [N] at poses float32 [N, 5].

        Returns (rgb uint8 [N, S, S, 3], labels uint8 [N, S, S] (0 = sky), depth float16
        [N, S, S] (distance along the ray in blocks; ``view_distance`` for sky)).
        """
        size = self.cfg.size
        per_frame = size * size
        rays = self.cfg.render_chunk_rays or (1 << 20 if self.device.type == "cpu" else 1 << 23)
        step = max(1, rays // per_frame)
        parts = [
            self._render_chunk(world, b[i : i + step], poses[i : i + step])
            for i in range(0, b.shape[0], step)
        ]
        return tuple(torch.cat([p[j] for p in parts]) for j in range(3))

    def _render_chunk(self, world: World, b: torch.Tensor, poses: torch.Tensor):
        cfg, n, size = self.cfg, b.shape[0], self.cfg.size
        d = camera_rays(poses, size, cfg.fov_deg).view(-1, 3)
        o = poses[:, None, :3].expand(n, size * size, 3).reshape(-1, 3).float()
        rb = b[:, None].expand(n, size * size).reshape(-1)
        t, face = march(world, rb, o, d, cfg.view_distance)
        hit = t < FAR
        th = torch.where(hit, t, 0.0)
        p = o + th[:, None] * d
        normal = self._normals(face, d)
        v = (p - 1e-3 * normal).floor().long()
        kind = torch.where(hit, block_kind(world, rb, v[:, 0], v[:, 1], v[:, 2]), 0)
        colour = self._texture(kind, face, p, v)
        light = _AMBIENT + (1 - _AMBIENT) * (normal @ self.sun).clamp(min=0)
        colour = colour * light[:, None]
        fog = ((th - cfg.fog_start) / (cfg.view_distance - cfg.fog_start)).clamp(0, 1)
        sky = sky_colour(d)
        fog = torch.where(hit, fog, 1.0)[:, None]
        rgb = (colour * (1 - fog) + sky * fog).round().clamp(0, 255).to(torch.uint8)
        # hits stay strictly below the sky's depth after float16 rounding (spacing <= vd/1024)
        near = th.clamp(max=cfg.view_distance * (1 - 2**-10))
        depth = torch.where(hit, near, cfg.view_distance).to(torch.float16)
        shape = (n, size, size)
        return rgb.view(*shape, 3), kind.to(torch.uint8).view(shape), depth.view(shape)

    def _normals(self, face: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Outward unit normals [R, 3] of the hit faces (walls face against the ray)."""
        n = torch.zeros_like(d)
        n[:, 0] = torch.where(face == FACE_X, -torch.sign(d[:, 0]), 0.0)
        n[:, 1] = torch.where(face == FACE_Y, -torch.sign(d[:, 1]), 0.0)
        n[:, 2] = torch.where(face == FACE_TOP, 1.0, torch.where(face == FACE_BOTTOM, -1.0, 0.0))
        return n

    def _texture(self, kind, face, p, v) -> torch.Tensor:
        """Texel colour float [R, 3] of each hit plus a faint per-block tint."""
        frac = p - p.floor()
        u = torch.where(face == FACE_X, frac[:, 1], frac[:, 0])
        w = torch.where(face >= FACE_X, 1 - frac[:, 2], frac[:, 1])
        tu = (u * TEXELS).long().clamp(0, TEXELS - 1)
        tv = (w * TEXELS).long().clamp(0, TEXELS - 1)
        group = torch.where(face >= FACE_X, 1, torch.where(face == FACE_BOTTOM, 2, 0))
        colour = self.atlas[kind, group, tv, tu]
        hashed = (v[:, 0] * 73856093) ^ (v[:, 1] * 19349663) ^ (v[:, 2] * 83492791)
        tint = 1 + 0.08 * ((hashed & 255).float() / 255 - 0.5)
        return colour * tint[:, None]
