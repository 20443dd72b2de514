"""Turn evaluation results into files: per-frame CSV, table.md and paired.md (``markdown``), Fig.-4
curves with the revisit bands, results.json."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from millivid.atomic import atomic_path, write_json_atomic, write_text_atomic
from millivid.data.videos import load_video
from millivid.evaluate.baselines import AE_BASELINES, KNOWN
from millivid.evaluate.image_metrics import PSNR_CAP_DB
from millivid.evaluate.markdown import (
    direction_arrow,
    display_name,
    paired_markdown,
    splits_markdown,
    table_markdown,
)
from millivid.evaluate.results import KEY_COLUMNS, SetResults, json_safe
from millivid.evaluate.splits import SPLIT_COLUMNS
from millivid.plots import pyplot


def write_csv(results: SetResults, path: Path) -> None:
    """One row per (method, video, frame since context): the split columns ``revisit`` and
    ``turn`` (1, 0, or empty when the ground truth has no poses / actions) and every frame
    metric."""
    cols = [*KEY_COLUMNS, *SPLIT_COLUMNS] + [
        m for m in results.metrics if results.rows and m in results.rows[0]
    ]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results.rows)


def revisit_spans(share: Sequence[float]) -> list[tuple[float, float, float]]:
    """Runs of equal non-zero revisit share [T] (frame i+1 has share[i]) as (x0, x1, share) with
    frames centred on integers: the shaded bands of the curves."""
    spans, start = [], 0
    for i in range(1, len(share) + 1):
        if i == len(share) or share[i] != share[start]:
            if share[start] > 0:
                spans.append((start + 0.5, i + 0.5, float(share[start])))
            start = i
    return spans


LINE_STYLES = ("-", "--", ":")


def line_style(i: int) -> dict[str, str]:
    """The i-th method's line: the ten default colours, then the same with dashes, dots, ...
    so that every method of a figure keeps its own look."""
    return {"color": f"C{i % 10}", "linestyle": LINE_STYLES[i // 10 % len(LINE_STYLES)]}


def plot_curves(
    curves: dict[str, dict[str, list[float]]],
    metrics: Sequence[str],
    out_stem: Path,
    revisit: Sequence[float] | None = None,
) -> list[Path]:
    """Fig. 4-style: metric vs frames since context, one line per method; writes .png and .svg.

    ``revisit`` [T]: share of test videos whose frame i+1 is a revisit, drawn as green bands
    (darker = more videos) behind the lines.
    """
    shown = [m for m in metrics if any(m in c for c in curves.values())]
    if not shown:
        return []
    fig, axes = panels(len(shown))
    spans = revisit_spans(revisit) if revisit is not None else []
    for ax, m in zip(axes, shown):
        for x0, x1, share in spans:
            ax.axvspan(x0, x1, color="tab:green", alpha=0.3 * share, linewidth=0, zorder=0)
        for i, (method, c) in enumerate(curves.items()):
            if m in c:
                x = range(1, len(c[m]) + 1)
                ax.plot(x, c[m], label=method, linewidth=1.3, **line_style(i))
        ax.set_title(f"{display_name(m)} {direction_arrow(m)}")
        ax.set_xlabel("frames since context")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if spans:
        from matplotlib.patches import Patch  # on first use, as pyplot (millivid.plots)

        handles.append(Patch(color="tab:green", alpha=0.3))
        labels.append("revisit (share of videos)")
    return finish_panels(fig, axes[len(shown) :], handles, labels, out_stem)


def panels(n: int) -> tuple:
    """A figure of ``n`` panels in rows of up to three, and its axes as a flat list (the spare
    ones after the first ``n``)."""
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = pyplot().subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    return fig, list(axes.flat)


def finish_panels(fig, spare: list, handles: list, labels: list, out_stem: Path) -> list[Path]:
    """Turn the ``spare`` panels off, lay the figure out, put the legend into the first spare
    panel when there is one, else below the panels (where it hides no curve), and write it as
    .png and .svg."""
    for ax in spare:
        ax.axis("off")
    fig.tight_layout()
    if spare:
        spare[0].legend(handles, labels, fontsize=8, loc="center")
    else:
        fig.legend(
            handles,
            labels,
            fontsize=8,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=min(4, len(labels)),
            frameon=False,
        )
    written = []
    for ext in ("png", "svg"):
        path = out_stem.with_suffix(f".{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
        written.append(path)
    pyplot().close(fig)
    return written


def plot_paired(
    paired: dict[str, dict[str, dict[str, dict[str, float]]]],
    reference: str,
    metrics: Sequence[str],
    labels: dict[str, str],
    out_stem: Path,
) -> list[Path]:
    """Per metric, each generated method's paired difference from ``reference`` per horizon
    (``paired``: method -> horizon -> metric -> {mean, ci95}), as points with their 95 %
    intervals around a zero line; ``labels``: each horizon's tick label. The trivial baselines
    are left out (their differences dwarf those between models). Writes .png and .svg; none
    when no generated method is paired."""
    methods = [m for m in paired if m not in KNOWN]
    shown = [m for m in metrics if any(m in c for p in methods for c in paired[p].values())]
    if not shown:
        return []
    horizons = list(labels)
    fig, axes = panels(len(shown))
    width = 0.6 / len(methods)
    for ax, metric in zip(axes, shown):
        ax.axhline(0.0, color="0.4", linewidth=0.8)
        for i, method in enumerate(methods):
            cells = [paired[method].get(h, {}).get(metric) for h in horizons]
            x = [j + (i - (len(methods) - 1) / 2) * width for j, c in enumerate(cells) if c]
            y = [c["mean"] for c in cells if c]
            err = [c["ci95"] for c in cells if c]
            ax.errorbar(x, y, yerr=err, fmt="o", capsize=3, label=method, color=f"C{i % 10}")
        ax.set_xticks(range(len(horizons)), [labels[h] for h in horizons])
        ax.set_title(f"{display_name(metric)} {direction_arrow(metric)}, − {reference}")
        ax.set_xlabel("frames since context")
        ax.grid(alpha=0.3)
        if len(horizons) > 4:
            ax.tick_params(axis="x", labelrotation=45)
    handles, names = axes[0].get_legend_handles_labels()
    return finish_panels(fig, axes[len(shown) :], handles, names, out_stem)


def horizon_labels(names: Sequence[str], ends: Sequence[int] | None) -> dict[str, str]:
    """Each horizon's frames since context ("1–64", "65–256", ...), or its name without ends."""
    if ends is None:
        return {n: n for n in names}
    starts = [1, *(e + 1 for e in ends[:-1])]
    return {n: f"{a}–{e}" if e > a else f"{a}" for n, a, e in zip(names, starts, ends)}


def capped_psnr_note(rows: Sequence[dict]) -> str:
    """A table note naming the methods with frames at the PSNR cap (pixel-exact copies of the
    ground truth, e.g. nearest-pose on the very pose of a context frame): their means are lifted
    by frames no generated or decoded frame can approach. Empty when there are none."""
    counts: dict[str, list[int]] = {}
    for r in rows:
        if r.get("psnr") is not None:
            c = counts.setdefault(r["method"], [0, 0])
            c[0] += r["psnr"] >= PSNR_CAP_DB
            c[1] += 1
    capped = [f"{m} {k} of {n} frames" for m, (k, n) in counts.items() if k]
    if not capped:
        return ""
    return (
        f"\nPSNR of frames identical to the ground truth is capped at {PSNR_CAP_DB:g} dB; "
        f"at the cap: {', '.join(capped)}. These lift the method's PSNR means.\n"
    )


def results_summary(results: SetResults, start: int | None = None) -> dict:
    """results.json: horizons per method, paired differences from the first reference, and the
    splits (thresholds, shares per horizon, split means, memory gains, paired per reference)."""
    return {
        "start": start,
        "metrics": list(results.metrics),
        "horizons": results.horizons,
        "videos": results.videos,
        "paired": results.paired,
        "references": list(results.references),
        "splits": {
            "thresholds": results.thresholds,
            "share": results.shares,
            "horizons": results.splits,
            "memory_gain": results.memory,
            "paired": results.paired_splits,
            "revisit_curve": results.revisit_curve,
        },
    }


def write_set_outputs(
    results: SetResults,
    out_dir: Path,
    horizon_names: Sequence[str],
    start: int | None = None,
    horizon_ends: Sequence[int] | None = None,
) -> dict:
    """per_frame.csv, table.md, curves.png/svg, results.json and (several methods) paired.md in
    ``out_dir``, and paired.png/svg when a generated method is paired with the first reference
    (``horizon_ends`` label its horizons), removing those an earlier evaluation into
    ``out_dir`` left and this one does not write; returns the paths written (``curves`` lists
    only the curve files this call wrote, possibly none, and includes paired.png/svg)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(results, out_dir / "per_frame.csv")
    table = table_markdown(results.horizons, results.metrics, horizon_names)
    baselines = [m for m in results.horizons if m in KNOWN]
    if baselines:
        table += f"\nTrivial baselines (no generation): {', '.join(baselines)}.\n"
    if any(m in AE_BASELINES for m in baselines):
        table += (
            "\n`-ae` baselines and `autoencoder`: decoded through the autoencoder at level 0; "
            "`autoencoder` is the ground truth so decoded, the ceiling of any latent model.\n"
        )
    table += capped_psnr_note(results.rows)
    splits = splits_markdown(results, horizon_names)
    write_text_atomic(out_dir / "table.md", table + ("\n" + splits if splits else ""))
    curves = plot_curves(results.curves, results.metrics, out_dir / "curves", results.revisit_curve)
    paired = [
        paired_markdown(results.paired_splits[r], r, horizon_names)
        for r in results.references
        if results.paired_splits.get(r, {}).get("all")
    ]
    if paired:
        write_text_atomic(out_dir / "paired.md", "\n".join(paired))
        labels = horizon_labels(horizon_names, horizon_ends)
        ref = results.references[0]
        curves += plot_paired(results.paired, ref, results.metrics, labels, out_dir / "paired")
    summary = json_safe(results_summary(results, start))
    write_json_atomic(out_dir / "results.json", summary)
    kept = set(curves) | ({out_dir / "paired.md"} if paired else set())
    for name in ("curves.png", "curves.svg", "paired.png", "paired.svg", "paired.md"):
        if out_dir / name not in kept:  # left by an earlier evaluation into this folder
            (out_dir / name).unlink(missing_ok=True)
    return {
        "csv": str(out_dir / "per_frame.csv"),
        "table": str(out_dir / "table.md"),
        "curves": [str(p) for p in curves if p.is_file()],  # none when there was nothing to plot
        "json": str(out_dir / "results.json"),
        **({"paired": str(out_dir / "paired.md")} if paired else {}),
    }


def comparison_grid(
    videos: dict[str, np.ndarray], frames: Sequence[int], start: int, path: Path
) -> Path:
    """A PNG with one row per video (ground truth first, then each method) and one column per
    frame index in ``frames``: videos uint8 [T, H, W, 3], titled by frames since context."""
    plt = pyplot()

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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def rollout_grid(
    gt_dir: Path, pred_dir: Path, context: int, frames: int, path: Path
) -> Path | None:
    """``comparison_grid`` of the first ground-truth video and every method's rollout of it
    (``pred_dir/<method>/``) at the last context frame and 1, 8, 64, then every 128 generated
    frames; None without ground truth."""
    gt = sorted(Path(gt_dir).glob("*.npz"))
    if not gt:
        return None
    videos = {"ground truth": load_video(gt[0], keys=("video",)).video}
    for pred in sorted(Path(pred_dir).glob(f"*/{gt[0].name}")):
        videos[pred.parent.name] = load_video(pred, keys=("video",)).video
    offsets = sorted({1, 8, 64, *range(128, frames + 1, 128), frames})
    picks = [context - 1, *(context + k - 1 for k in offsets if k <= frames)]
    return comparison_grid(videos, picks, context, path)
