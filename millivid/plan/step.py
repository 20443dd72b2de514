"""The one step type every method's plan is made of (pure Python, no torch).

A step says which (level, frame range) tokens are context and which are target, in packing order:
context spans first (as listed), then ``target``, then ``discarded``. Frame ranges are half-open
``[start, stop)`` absolute frame indices. The planner knows nothing about tensors: training
(``sample_training_step``) and the rollout engine both consume these steps.

Sequence length of a step = ``context_tokens + memory.tokens + missing_tokens + target_tokens``; it
is the same for every step of one method and budget, so steps of any kind stack into one batch.

``Step.memory`` (``plan.memory_frames``, an extension of the paper): a fixed number of extra
context frames at one level, chosen when the step runs rather than by the plan: earlier frames
whose camera poses are nearest the target frames' (``millivid.model.memory``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Span:
    """Frames ``[start, stop)`` at one level. For FramePack-style methods ``level`` is the
    compression level: level-0 latents patchified with a 2^level x 2^level kernel (or, for
    ``hierarchical-framepack``, the hierarchy level re-encoded from generated level-0 frames)."""

    level: int
    start: int
    stop: int

    @property
    def frames(self) -> int:
        return self.stop - self.start

    def shifted(self, offset: int) -> Span:
        """The same span ``offset`` frames later."""
        return Span(self.level, self.start + offset, self.stop + offset)

    def to_json(self) -> dict:
        return {"level": self.level, "frames": [self.start, self.stop]}


@dataclass(frozen=True)
class Memory:
    """``frames`` context frames at ``level`` (``tokens`` tokens in all) retrieved by camera pose
    from ``pool``: ``unheld`` (frames before the target that the step's spans do not hold at
    ``level``) or ``older`` (frames before ``Step.first_frame``); fewer candidates than
    ``frames`` leave padding."""

    level: int
    frames: int
    tokens: int
    pool: str = "unheld"

    def to_json(self) -> dict:
        return {
            "level": self.level,
            "frames": self.frames,
            "tokens": self.tokens,
            "pool": self.pool,
        }


@dataclass(frozen=True)
class Step:
    """One rollout step: clean context spans + noisy target span(s), in packing order.

    ``target`` is the span whose frames are written back at sampling time. ``discarded`` are extra
    targets that are trained on but thrown away at sampling (mirrored FramePack). ``target_tokens``
    counts all noisy tokens (``target`` and ``discarded``). ``context_tokens`` counts the context
    tokens present. ``missing_tokens`` counts context tokens that are not there: those that would
    lie before frame 0 (start of a video) plus any fixed padding of the method (``upscale``). The
    engine pads and masks that many tokens so the sequence length stays fixed.
    """

    target: Span
    context: tuple[Span, ...]
    context_tokens: int
    target_tokens: int
    discarded: tuple[Span, ...] = ()
    missing_tokens: int = 0
    memory: Memory | None = None

    @property
    def spans(self) -> tuple[Span, ...]:
        """Every span of the step in packing order: context, target, discarded."""
        return (*self.context, self.target, *self.discarded)

    @property
    def sequence_tokens(self) -> int:
        """Fixed sequence length S of the step (present + missing context, memory, targets)."""
        return self.context_tokens + self.memory_tokens + self.missing_tokens + self.target_tokens

    @property
    def memory_tokens(self) -> int:
        """Token slots of the retrieved memory frames (0 without memory)."""
        return self.memory.tokens if self.memory else 0

    @property
    def last_frame(self) -> int:
        """One past the last frame any span touches (a video must be at least this long)."""
        return max(s.stop for s in self.spans)

    @property
    def first_frame(self) -> int:
        """The earliest frame any span touches."""
        return min(s.start for s in self.spans)

    def shifted(self, offset: int) -> Step:
        """Every span ``offset`` frames later, token counts unchanged (no cut at frame 0)."""
        return replace(
            self,
            target=self.target.shifted(offset),
            context=tuple(s.shifted(offset) for s in self.context),
            discarded=tuple(s.shifted(offset) for s in self.discarded),
        )

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
        if self.memory:
            out["memory"] = self.memory.to_json()
        return out


def with_memory(
    step: Step, level: int, frames: int, tokens: Sequence[int], pool: str = "unheld"
) -> Step:
    """``step`` with ``frames`` memory frames at ``level`` from ``pool`` (none when ``frames``
    is 0)."""
    if not frames:
        return step
    return replace(step, memory=Memory(level, frames, frames * tokens[level], pool))


def span_tokens(span: Span, tokens: Sequence[int]) -> int:
    """Tokens of a span: its frames times the per-frame token count of its level."""
    return span.frames * tokens[span.level]


def raw_step(
    target: Span,
    context: Sequence[Span],
    tokens: Sequence[int],
    discarded: Sequence[Span] = (),
    padding: int = 0,
) -> Step:
    """A step before cutting at frame 0: context spans may start before frame 0 and are kept
    whole (empty ones are dropped); ``padding`` is the method's fixed count of padded context
    tokens."""
    context = [s for s in context if s.frames > 0]
    return Step(
        target=target,
        context=tuple(context),
        context_tokens=sum(span_tokens(s, tokens) for s in context),
        target_tokens=span_tokens(target, tokens) + sum(span_tokens(s, tokens) for s in discarded),
        discarded=tuple(discarded),
        missing_tokens=padding,
    )


def place(raw: Step, offset: int, tokens: Sequence[int]) -> Step:
    """``raw`` moved ``offset`` frames later and cut at frame 0.

    Context frames before frame 0 are dropped and counted in ``missing_tokens``; empty context
    spans are dropped. Targets must not start before frame 0.
    """
    context: list[Span] = []
    missing = raw.missing_tokens
    for span in raw.context:
        span = span.shifted(offset)
        if span.start < 0:
            cut = min(span.frames, -span.start)
            missing += cut * tokens[span.level]
            span = Span(span.level, span.start + cut, span.stop)
        if span.frames > 0:
            context.append(span)
    target = raw.target.shifted(offset)
    discarded = tuple(s.shifted(offset) for s in raw.discarded)
    if min(s.start for s in (target, *discarded)) < 0:
        raise ValueError(f"step targets {target} {discarded} start before frame 0")
    return replace(
        raw,
        target=target,
        context=tuple(context),
        context_tokens=sum(span_tokens(s, tokens) for s in context),
        discarded=discarded,
        missing_tokens=missing,
    )
