"""Turn evaluation results into files: per-frame CSV, Table-1 markdown, Fig.-4 curves, JSON."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from millivid.evaluate.runner import SetResults, json_safe
from millivid.evaluate.suite import DISPLAY, HIGHER_IS_BETTER

SHORT_HORIZON = {"short": "short", "medium": "med.", "long": "long"}


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_csv(results: SetResults, path: Path) -> None:
    """One row per (method, video, frame since context) with every frame metric."""
    cols = ["method", "video", "frame"] + [
        m for m in results.metrics if results.rows and m in results.rows[0]
    ]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results.rows)
    os.replace(tmp, path)


def _fmt(metric: str, value: float) -> str:
    if metric in ("psnr", "matches", "fid", "fvd"):
        return f"{value:.2f}" if metric in ("psnr", "fid") else f"{value:.1f}"
    return f"{value:.3f}"


def table_markdown(
    horizons: dict[str, dict[str, dict[str, float]]],
    metrics: Sequence[str],
    horizon_names: Sequence[str],
    per_table: int = 4,
) -> str:
    """Table 1's layout: one row per method, per metric a short/med./long column group, best bold.

    Metrics are split into tables of ``per_table`` metrics each, as the paper does.
    """
    methods = list(horizons)
    present = [h for h in horizon_names if any(h in horizons[m] for m in methods)]
    blocks = []
    for i in range(0, len(metrics), per_table):
        group = list(metrics[i : i + per_table])
        head = ["Method"] + [
            f"{DISPLAY[m]} {'↑' if HIGHER_IS_BETTER[m] else '↓'} {SHORT_HORIZON.get(h, h)}"
            for m in group
            for h in present
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        best = {}
        for m in group:
            for h in present:
                vals = [horizons[k].get(h, {}).get(m) for k in methods]
                vals = [v for v in vals if v is not None]
                if vals:
                    best[m, h] = max(vals) if HIGHER_IS_BETTER[m] else min(vals)
        for k in methods:
            cells = [k]
            for m in group:
                for h in present:
                    v = horizons[k].get(h, {}).get(m)
                    if v is None:
                        cells.append("–")
                    else:
                        s = _fmt(m, v)
                        cells.append(f"**{s}**" if len(methods) > 1 and v == best[m, h] else s)
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def paired_markdown(
    paired: dict[str, dict[str, dict[str, dict[str, float]]]],
    reference: str,
    horizon_names: Sequence[str],
) -> str:
    """paired.md: per method, its mean difference from ``reference`` over the videos both have,
    ± the 95% interval, and in brackets the share of videos where it is better."""
    lines = [
        f"Difference from **{reference}**, per video then averaged: mean ± 95% interval "
        "(1.96·sd/√n), in brackets the share of videos where the method is better.",
        "",
    ]
    for method, cells in paired.items():
        metrics = list(dict.fromkeys(m for h in cells.values() for m in h))
        present = [h for h in horizon_names if h in cells]
        n = next(iter(next(iter(cells.values())).values()))["videos"]
        lines += [f"### {method} − {reference} ({n} videos)", ""]
        lines.append("| metric | " + " | ".join(present) + " |")
        lines.append("|---|" + "---|" * len(present))
        for m in metrics:
            row = []
            for h in present:
                c = cells[h].get(m)
                row.append(
                    "–"
                    if c is None
                    else f"{c['mean']:+.3f} ± {c['ci95']:.3f} ({100 * c['wins']:.0f} %)"
                )
            lines.append(f"| {DISPLAY[m]} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_curves(
    curves: dict[str, dict[str, list[float]]], metrics: Sequence[str], out_stem: Path
) -> list[Path]:
    """Fig. 4-style: metric vs frames since context, one line per method; writes .png and .svg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in metrics if any(m in c for c in curves.values())]
    if not shown:
        return []
    cols = min(3, len(shown))
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, m in zip(axes.flat, shown):
        for method, c in curves.items():
            if m in c:
                ax.plot(range(1, len(c[m]) + 1), c[m], label=method, linewidth=1.3)
        ax.set_title(f"{DISPLAY[m]} {'↑' if HIGHER_IS_BETTER[m] else '↓'}")
        ax.set_xlabel("frames since context")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    written = []
    for ext in ("png", "svg"):
        path = out_stem.with_suffix(f".{ext}")
        tmp = path.with_name(f"{path.stem}.tmp.{ext}")
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
        written.append(path)
    plt.close(fig)
    return written


def write_set_outputs(
    results: SetResults, out_dir: Path, horizon_names: Sequence[str], start: int | None = None
) -> dict:
    """per_frame.csv, table.md, curves.png/svg, results.json and (several methods) paired.md in
    ``out_dir``; returns the paths
    written (``curves`` lists only the curve files this call wrote, possibly none)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(results, out_dir / "per_frame.csv")
    _atomic_write_text(
        out_dir / "table.md", table_markdown(results.horizons, results.metrics, horizon_names)
    )
    curves = plot_curves(results.curves, results.metrics, out_dir / "curves")
    summary = {
        "start": start,
        "metrics": list(results.metrics),
        "horizons": results.horizons,
        "videos": results.videos,
        "paired": results.paired,
    }
    if results.paired:
        methods = list(results.horizons)
        reference = next(m for m in methods if m not in results.paired)
        _atomic_write_text(
            out_dir / "paired.md", paired_markdown(results.paired, reference, horizon_names)
        )
    _atomic_write_text(out_dir / "results.json", json.dumps(json_safe(summary), indent=2))
    return {
        "csv": str(out_dir / "per_frame.csv"),
        "table": str(out_dir / "table.md"),
        "curves": [str(p) for p in curves if p.is_file()],  # none when there was nothing to plot
        "json": str(out_dir / "results.json"),
        **({"paired": str(out_dir / "paired.md")} if results.paired else {}),
    }


def comparison_grid(
    videos: dict[str, np.ndarray], frames: Sequence[int], start: int, path: Path
) -> Path:
    """A PNG with one row per video (ground truth first, then each method) and one column per
    frame index in ``frames``: videos uint8 [T, H, W, 3], titled by frames since context."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(videos), len(frames)
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.15 * rows), squeeze=False)
    for r, (name, video) in enumerate(videos.items()):
        for c, f in enumerate(frames):
            ax = axes[r, c]
            ax.imshow(video[f], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{f - start + 1}" if f >= start else f"ctx {f}", fontsize=7)
            if c == 0:
                ax.set_ylabel(name, fontsize=7)
    fig.tight_layout(pad=0.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    plt.close(fig)
    return path
