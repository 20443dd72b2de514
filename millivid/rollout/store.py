"""The latent store: per level, the latents of every frame of a batch of videos and which are known.

Ground-truth context frames are known at every level; generated frames become known at the level
they were generated at. Reading a frame that is not yet known is a bug in the plan or the engine,
so ``read`` refuses it (this is what the tests instrument), and unknown entries hold NaN so that
any read that bypasses ``read`` poisons the output instead of silently using zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from millivid.model.memory import gather_frames
from millivid.plan.step import Span


class PendingLatentError(RuntimeError):
    """A step tried to read latents that are not known yet at that level."""


class LatentStore:
    """Latents ``[B, T, h_l, w_l, C]`` per level plus a known-mask ``[L, T]`` shared by the batch."""

    def __init__(
        self,
        shapes: Sequence[tuple[int, int]],
        batch: int,
        frames: int,
        channels: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self.levels = [
            torch.full((batch, frames, h, w, channels), float("nan"), device=device)
            for h, w in shapes
        ]
        self.known = torch.zeros(len(shapes), frames, dtype=torch.bool)
        self.reads: list[Span] = []  # every span read, in order (for tests and debugging)

    @property
    def frames(self) -> int:
        return self.known.shape[1]

    def frontier(self, level: int) -> int:
        """Number of leading frames known at ``level``."""
        unknown = (~self.known[level]).nonzero()
        return int(unknown[0]) if len(unknown) else self.frames

    def write(self, span: Span, values: torch.Tensor) -> None:
        """Store ``values [B, frames, h, w, C]`` for ``span`` and mark it known."""
        store = self.levels[span.level]
        expected = (store.shape[0], span.frames, *store.shape[2:])
        if tuple(values.shape) != expected:
            raise ValueError(
                f"write to {span}: expected shape {expected}, got {tuple(values.shape)}"
            )
        store[:, span.start : span.stop] = values.to(store.dtype)
        self.known[span.level, span.start : span.stop] = True

    def read(self, span: Span) -> torch.Tensor:
        """Latents ``[B, frames, h, w, C]`` of ``span``; every frame must be known."""
        if span.start < 0 or span.stop > self.frames:
            raise PendingLatentError(f"{span} lies outside the video's {self.frames} frames")
        if not bool(self.known[span.level, span.start : span.stop].all()):
            raise PendingLatentError(f"{span} reads latents that are not known yet")
        self.reads.append(span)
        return self.levels[span.level][:, span.start : span.stop]

    def gather(self, level: int, frames: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, M, h, w, C]``: frame ``frames[b, m]`` (int64 [B, M]) of video b at
        ``level``, zeros where it is -1; every other frame must be known."""
        picked = frames[frames >= 0]
        if len(picked) and (
            int(picked.max()) >= self.frames or not bool(self.known[level, picked].all())
        ):
            raise PendingLatentError(f"memory frames at level {level} are not known yet")
        return gather_frames(self.levels[level], frames)

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"level{i}": lat.cpu().contiguous() for i, lat in enumerate(self.levels)}
        out["known"] = self.known.to(torch.uint8)
        return out

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for i, lat in enumerate(self.levels):
            saved = state[f"level{i}"]
            if saved.shape != lat.shape:
                raise ValueError(
                    f"stored level {i} has shape {tuple(saved.shape)}, expected {tuple(lat.shape)}"
                )
            lat.copy_(saved)
        self.known.copy_(state["known"].bool())
