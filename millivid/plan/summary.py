"""Readable text of a plan: one row per step and the totals (used by ``millivid plan``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from millivid.plan.config import PlanConfig
from millivid.plan.step import Span, Step


def span_text(span: Span) -> str:
    return f"L{span.level}[{span.start},{span.stop})"


def plan_totals(steps: Sequence[Step], start: int, end: int) -> dict:
    """Steps, frames generated per level (in [start, end) and past end) and tokens per step."""
    kept: Counter[int] = Counter()
    dropped: Counter[int] = Counter()
    for s in steps:
        kept[s.target.level] += max(0, min(s.target.stop, end) - s.target.start)
        dropped[s.target.level] += max(0, s.target.stop - max(s.target.start, end))
    return {
        "steps": len(steps),
        "steps_per_level": dict(sorted(Counter(s.target.level for s in steps).items())),
        "frames_per_level": dict(sorted(kept.items())),
        "frames_past_end": dict(sorted(dropped.items())),
        "sequence_tokens": sorted({s.sequence_tokens for s in steps}),
        "context_tokens": sorted({s.context_tokens for s in steps}),
        "memory_tokens": sorted({s.memory_tokens for s in steps}),
        "missing_tokens": sorted({s.missing_tokens for s in steps}),
        "target_tokens": sorted({s.target_tokens for s in steps}),
    }


def plan_table(method: str, budget: PlanConfig, start: int, end: int, steps: Sequence[Step]) -> str:
    """One line per step (target, context spans, token counts), then the totals."""
    header = (
        f"{method}: tokens {','.join(map(str, budget.tokens))}  "
        f"context {','.join(map(str, budget.context))}  target tokens {budget.target_tokens}  "
        f"frames [{start}, {end})"
    )
    memory = any(s.memory for s in steps)  # a column of the frames each step retrieves
    rows = [
        header,
        f"{'step':>5}  {'target':<15} {'ctx':>6} {'miss':>6} {'tgt':>6}"
        + (f" {'memory':>7}" if memory else "")
        + "  context",
    ]
    for i, s in enumerate(steps, 1):
        extra = "".join(f"  x{span_text(d)}" for d in s.discarded)
        mem = f"{s.memory.frames}×L{s.memory.level}" if s.memory else "-"
        rows.append(
            f"{i:>5}  {span_text(s.target):<15} {s.context_tokens:>6} {s.missing_tokens:>6} "
            f"{s.target_tokens:>6}"
            + (f" {mem:>7}" if memory else "")
            + f"  {' '.join(span_text(c) for c in s.context)}{extra}"
        )
    t = plan_totals(steps, start, end)

    def per_level(d: dict) -> str:
        return ", ".join(f"L{k} {v}" for k, v in d.items()) or "none"

    rows += [
        "",
        f"steps: {t['steps']} ({per_level(t['steps_per_level'])})",
        f"frames generated per level in [{start}, {end}): {per_level(t['frames_per_level'])}",
        f"frames generated past end (dropped): {per_level(t['frames_past_end'])}",
        "tokens per step: context "
        + "/".join(map(str, t["context_tokens"]))
        + " + memory "
        + "/".join(map(str, t["memory_tokens"]))
        + " + missing "
        + "/".join(map(str, t["missing_tokens"]))
        + " + target "
        + "/".join(map(str, t["target_tokens"]))
        + " = sequence "
        + "/".join(map(str, t["sequence_tokens"])),
        "(x = discarded target; missing = padded context: cut at frame 0 or fixed padding"
        + ("; memory = frames retrieved by camera pose × their level)" if memory else ")"),
    ]
    return "\n".join(rows)
