"""The one step type every method's plan is made of (pure Python, no torch).

A step says which (level, frame range) tokens are context and which are target, in packing order.
Frame ranges are half-open ``[start, stop)`` absolute frame indices. The planner knows nothing
about tensors: the training sampler and the rollout engine both consume these steps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Frames ``[start, stop)`` at one level. For FramePack-style methods ``level`` is the
    compression level: level-0 latents patchified with a 2^level x 2^level kernel."""

    level: int
    start: int
    stop: int

    @property
    def frames(self) -> int:
        return self.stop - self.start

    def to_json(self) -> dict:
        return {"level": self.level, "frames": [self.start, self.stop]}


@dataclass(frozen=True)
class Step:
    """One rollout step: clean context spans + noisy target span(s), in packing order.

    ``target`` is the span whose frames are written back at sampling time. ``discarded`` are extra
    targets that are trained on but thrown away at sampling (mirrored FramePack). ``missing_tokens``
    counts context tokens that would lie before frame 0 (start of a video): the engine pads and
    masks that many tokens so the sequence length stays fixed.
    """

    target: Span
    context: tuple[Span, ...]
    context_tokens: int
    target_tokens: int
    discarded: tuple[Span, ...] = ()
    missing_tokens: int = 0

    def to_json(self) -> dict:
        out = {
            "target": self.target.to_json(),
            "context": [s.to_json() for s in self.context],
            "context_tokens": self.context_tokens,
            "target_tokens": self.target_tokens,
        }
        if self.discarded:
            out["discarded"] = [s.to_json() for s in self.discarded]
        if self.missing_tokens:
            out["missing_tokens"] = self.missing_tokens
        return out
