"""Top-down pictures: the world map around a trajectory, with the path drawn over it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from millivid.atomic import atomic_path
from millivid.plots import pyplot
from millivid.world.blocks import block_textures
from millivid.world.terrain import World, unpack


def top_down_map(world: World, index: int, x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    """RGB map uint8 [y1 - y0, x1 - x0, 3] of world ``index``: top colour of each column, shaded
    by height (objects show their top kind). Coordinates wrap around the torus."""
    w = world.world_size
    xs = torch.arange(x0, x1, device=world.columns.device) % w
    ys = torch.arange(y0, y1, device=world.columns.device) % w
    cols = world.columns[index].view(w, w)[ys][:, xs]
    h, ot = unpack(cols, "h"), unpack(cols, "ot")
    has_obj = ot > unpack(cols, "ob")
    kind = torch.where(has_obj, unpack(cols, "k2"), unpack(cols, "surface"))
    height = torch.where(has_obj, ot, h).float()
    palette = block_textures().float()[:, 0].mean(dim=(1, 2)).to(cols.device)  # [K, 3]
    shade = 0.75 + 0.25 * (height - height.min()) / (height.max() - height.min() + 1e-6)
    rgb = (palette[kind] * shade[..., None]).clamp(0, 255).to(torch.uint8)
    return rgb.cpu().numpy()


def plot_trajectory(
    path: str | Path, poses: torch.Tensor, world: World, index: int = 0, context: int = 256
) -> Path:
    """Save a top-down PNG of one video's trajectory (poses float [T, 5]) over its world map.

    The first ``context`` frames are drawn in white, the rest in red; the start is a circle.
    """
    plt = pyplot()

    xy = poses[:, :2].double().cpu().numpy()
    margin = 12
    x0, y0 = np.floor(xy.min(0)).astype(int) - margin
    x1, y1 = np.ceil(xy.max(0)).astype(int) + margin
    image = top_down_map(world, index, int(x0), int(x1), int(y0), int(y1))
    fig, ax = plt.subplots(figsize=(6, 6 * (y1 - y0) / max(x1 - x0, 1) + 0.5))
    ax.imshow(image, origin="lower", extent=(x0, x1, y0, y1), interpolation="nearest")
    c = min(context, len(xy))
    ax.plot(xy[:c, 0], xy[:c, 1], color="white", lw=1.5, label=f"context (first {c} frames)")
    if c < len(xy):
        ax.plot(xy[c - 1 :, 0], xy[c - 1 :, 1], color="red", lw=1.2, label="rest")
    ax.plot(xy[0, 0], xy[0, 1], "o", color="white", mec="black", label="start")
    ax.set_xlabel("x (blocks)")
    ax.set_ylabel("y (blocks)")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(f"top-down trajectory, {len(xy)} frames")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
