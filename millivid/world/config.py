"""World and agent configuration (the LOOPCRAFT-lite law's parameters live here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorldConfig:
    """Rendering size and video length; the world helper extends this with terrain/agent fields."""

    size: int = 64  # frames are size x size pixels
    frames: int = 1024  # frames per video


PRESETS = {
    "tiny": WorldConfig(size=32, frames=96),
    "mini": WorldConfig(size=64, frames=1024),
    "paper": WorldConfig(size=256, frames=1024),
}
