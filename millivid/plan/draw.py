"""Pictures of a plan in the style of the paper's Fig. 10/11 (matplotlib, imported lazily).

One row-group per step (plus the initial and final states), one row per level (finest on top),
one column per frame. Cell colours: context, target, discarded target, fixed (known, not seen by
the step), pending (not yet generated). ``*`` marks context made by patchifying level-0 latents.
Long plans are cut to their first ``max_steps`` steps so the picture stays legible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from millivid.atomic import atomic_path
from millivid.plan.check import replay_frontiers
from millivid.plan.config import PlanConfig
from millivid.plan.methods import context_source, get_method
from millivid.plan.step import Step
from millivid.plots import pyplot

CONTEXT, TARGET, DISCARDED, FIXED, PENDING, GAP = range(6)
NAMES = ("context", "target", "discarded target", "fixed", "pending")
COLOURS = ("#3d7fd9", "#f28e2b", "#f7c89b", "#b9b9b9", "#ffffff", "#ffffff")


def cell_states(
    step: Step | None, known: Sequence[int], rows: int, lo: int, hi: int
) -> list[list[int]]:
    """State of each (level, frame) cell for frames [lo, hi): ``rows`` lists, level 0 first.

    ``known`` holds one frontier per level (or a single level-0 frontier that every row
    derives from). ``step=None`` draws a state with nothing seen (initial / final).
    """
    grid = []
    for level in range(rows):
        have = known[level] if len(known) > 1 else known[0]
        grid.append([FIXED if t < have else PENDING for t in range(lo, hi)])
    if step is None:
        return grid
    for kind, spans in (
        (CONTEXT, step.context),
        (DISCARDED, step.discarded),
        (TARGET, (step.target,)),
    ):
        for span in spans:
            for t in range(max(span.start, lo), min(span.stop, hi)):
                grid[span.level][t - lo] = kind
    return grid


def _layout(
    method: str, budget: PlanConfig, start: int, end: int, steps: Sequence[Step], max_steps: int
):
    shown = list(steps[:max_steps])
    states = replay_frontiers(method, budget, start, steps)
    lo = max(0, min([start, *(s.first_frame for s in shown)]))
    lo = 0 if lo <= 4 else lo  # show the video from its first frame when that is close
    truncated = len(shown) < len(steps)
    hi = max([start if truncated else end, *(s.last_frame for s in shown)])
    rows = get_method(method).drawn_levels(budget)
    groups = [("initial", None, states[0])]
    groups += [(f"{i + 1}", s, states[i]) for i, s in enumerate(shown)]
    if len(shown) == len(steps):
        groups.append(("final", None, states[-1]))
    return groups, rows, lo, hi


def _rgb(grid_rows: list[list[int]]):
    from matplotlib.colors import to_rgb  # on first use, as pyplot (millivid.plots)

    return [[to_rgb(COLOURS[c]) for c in row] for row in grid_rows]


def _draw_groups(ax, groups, rows, lo, hi, start, end, patchify, label_size):
    """Draw row-groups top to bottom on ``ax`` (one image, thin grid lines, markers)."""
    image, marks, ticks, labels = [], {"*": [], "x": []}, [], []
    for name, step, known in groups:
        grid = cell_states(step, known, rows, lo, hi)
        top = len(image)
        for level, row in enumerate(grid):
            image.append(row)
            for col, c in enumerate(row):
                if c == DISCARDED:
                    marks["x"].append((col, top + level))
                elif c == CONTEXT and patchify and level > 0:
                    marks["*"].append((col, top + level))
        ticks.append(top + (rows - 1) / 2)
        labels.append(name if step is None else f"{name}: L{step.target.level}")
        image.append([GAP] * (hi - lo))
    image.pop()
    cols = hi - lo
    ax.imshow(
        _rgb(image),
        aspect="auto",
        interpolation="nearest",
        extent=(lo - 0.5, hi - 0.5, len(image) - 0.5, -0.5),
    )
    line = dict(color="#dddddd", linewidth=0.4)
    if cols <= 160:
        ax.vlines([x + 0.5 for x in range(lo, hi - 1)], -0.5, len(image) - 0.5, **line)
    for r, row in enumerate(image):  # separate rows within a group; gap rows stay blank
        if row[0] == GAP:
            ax.axhspan(r - 0.5, r + 0.5, color="white", zorder=2)
        elif r + 1 < len(image) and image[r + 1][0] != GAP:
            ax.hlines(r + 0.5, lo - 0.5, hi - 0.5, **line)
    for marker, cells in marks.items():
        if cells:
            xs, ys = zip(*cells)
            size = max(4.0, min(30.0, 2400 / cols))
            ax.scatter(
                [x + lo for x in xs], ys, marker=marker, s=size, c="black", linewidths=0.6, zorder=3
            )
    ax.axvline(start - 0.5, color="black", linewidth=1.0, zorder=4)
    ax.axvline(end - 0.5, color="black", linewidth=1.0, linestyle="--", zorder=4)
    # a margin on the right so an ``end`` line on the last column's edge stays visible
    ax.set_xlim(lo - 0.5, hi - 0.5 + max(0.6, 0.015 * cols))
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=label_size)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("frame", fontsize=label_size + 1)
    ax.tick_params(axis="x", labelsize=label_size)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)


def _legend(fig, has_discarded: bool, patchify: bool, size: float):
    from matplotlib.patches import Patch  # on first use, as pyplot (millivid.plots)

    handles = [
        Patch(facecolor=COLOURS[i], edgecolor="#888888", label=NAMES[i])
        for i in (CONTEXT, TARGET, FIXED, PENDING)
    ]
    if has_discarded:
        handles.insert(
            2,
            Patch(facecolor=COLOURS[DISCARDED], edgecolor="#888888", label="discarded target (x)"),
        )
    if patchify:
        handles.append(
            Patch(
                facecolor=COLOURS[CONTEXT],
                edgecolor="#888888",
                hatch="**",
                label="* patchified level 0",
            )
        )
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=size, frameon=False)


def _title(method, budget, start, end, steps, shown) -> str:
    cut = (
        f" (first {shown} of {len(steps)} steps)"
        if shown < len(steps)
        else f" ({len(steps)} steps)"
    )
    spec = get_method(method)
    return (
        f"{method}: tokens {','.join(map(str, budget.tokens))}, context "
        f"{','.join(map(str, spec.context_frames(budget)))}, target {spec.target_tokens(budget)} "
        f"tokens; frames {start}\u2192{end}{cut}\nsolid line: start (ground truth before it); "
        "dashed: end; row per level, finest on top"
    )


def draw_plan(
    method: str,
    budget: PlanConfig,
    start: int,
    end: int,
    steps: Sequence[Step],
    path: Path,
    max_steps: int = 40,
) -> Path:
    """Save the plan as the paper's Fig. 10 (``.svg``, ``.png`` or ``.pdf`` by suffix)."""
    plt = pyplot()

    groups, rows, lo, hi = _layout(method, budget, start, end, steps, max_steps)
    patchify = context_source(method).patchified
    cell = min(0.16, 9.0 / (hi - lo))
    height_rows = len(groups) * (rows + 1)
    cell_h = min(0.16, 13.0 / height_rows)
    fig_w = max(6.0, (hi - lo) * cell + 1.6)
    fig_h = height_rows * cell_h + 1.4
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    size = 7 if height_rows < 120 else 6
    _draw_groups(ax, groups, rows, lo, hi, start, end, patchify, size)
    ax.set_title(
        _title(method, budget, start, end, steps, len(groups) - 1 - (groups[-1][0] == "final")),
        fontsize=8,
    )
    _legend(fig, any(s.discarded for s in steps), patchify, 7)
    fig.tight_layout(rect=(0, 0.3 / fig_h, 1, 1))
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def animate_plan(
    method: str,
    budget: PlanConfig,
    start: int,
    end: int,
    steps: Sequence[Step],
    path: Path,
    max_steps: int = 60,
    frame_ms: int = 500,
) -> Path:
    """Save an animated GIF: the initial state, one frame per step, the final state."""
    plt = pyplot()
    from PIL import Image  # on first use, as pyplot (millivid.plots): 0.1 s

    groups, rows, lo, hi = _layout(method, budget, start, end, steps, max_steps)
    patchify = context_source(method).patchified
    width = min(10.0, max(5.0, (hi - lo) * 0.2 + 1.5))
    images = []
    for group in groups:
        fig, ax = plt.subplots(figsize=(width, 0.35 * rows + 1.5))
        _draw_groups(ax, [group], rows, lo, hi, start, end, patchify, 7)
        name, step, _ = group
        what = (
            "state"
            if step is None
            else f"step {name}/{len(steps)}: target L{step.target.level} [{step.target.start},{step.target.stop})"
        )
        ax.set_yticks(range(rows))
        ax.set_yticklabels([f"L{i}" for i in range(rows)], fontsize=7)
        ax.set_title(f"{method}  {name if step is None else ''} {what}", fontsize=9)
        _legend(fig, any(s.discarded for s in steps), patchify, 7)
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        fig.canvas.draw()
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]))
        plt.close(fig)
    path = Path(path)
    durations = [frame_ms] * len(images)
    durations[0] = durations[-1] = 4 * frame_ms
    with atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,
            optimize=True,
        )
    return path
