"""The memory benchmark against training steps, data or model size: one evaluation per point.

    python benchmarks/scaling_curve.py --x-label "training steps" \\
        --point 2500=RUN-s2500/eval/per_frame.csv --point 4000=RUN-s4000/eval/per_frame.csv \\
        --method millivid-memory-aug --baseline fullres-memory --out curve.png

Each ``--point X=CSV`` is an evaluation's per_frame.csv (several, comma-separated, are merged as
``millivid evaluate --from-csv`` merges them) of the models at that point, X a number (steps,
training videos, width). Prints, per point and horizon, the mean ``--metric`` of every method
(the trivial baselines included: they do not change along the curve, so they are the lines to
beat) and the lead of ``--method`` over ``--baseline``, paired over the videos both have (mean ±
95 % interval), in all frames and in the revisit and novel frames alone (a point with only one
of the two has its means and no lead). ``--out`` draws it: the
means per horizon in the top row (``--methods``: only these), the paired lead with its
interval below. ``--json`` keeps the numbers of every point; ``--points-json`` reads such a
file back, so a curve can grow by a point without the earlier points' per_frame.csv.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from millivid.evaluate.horizons import FrameTable, paired_differences  # noqa: E402
from millivid.evaluate.results import results_from_csv  # noqa: E402
from millivid.presets import EVAL_PRESETS  # noqa: E402

SPLITS = ("all", "revisit", "novel")


def parse_point(text: str) -> tuple[float, list[Path]]:
    """``X=CSV[,CSV...]`` -> (X, paths)."""
    x, sep, paths = text.partition("=")
    try:
        value = float(x)
    except ValueError:
        value = None
    if not sep or value is None or not paths:
        raise SystemExit(f"--point {text!r}: expected NUMBER=per_frame.csv[,more.csv]")
    return value, [Path(p) for p in paths.split(",")]


def curve_point(paths: list[Path], method: str, baseline: str, metric: str, ecfg) -> dict:
    """At one point: {"means": {name: {horizon: mean}}, "lead": {split: {horizon: cell}}} where a
    cell is ``paired_differences``' (mean, ci95, wins, videos) of ``method`` − ``baseline``; a
    point with the rows of only one of the two (the other still training) has no lead cells."""
    for p in paths:
        if not p.is_file():
            raise SystemExit(f"{p}: no such per_frame.csv")
    res = results_from_csv(paths, ecfg)
    if metric not in res.metrics:
        raise SystemExit(f"{', '.join(map(str, paths))}: no {metric!r} column ({res.metrics})")
    present = {method, baseline} & res.horizons.keys()
    if not present:
        raise SystemExit(f"{', '.join(map(str, paths))}: no rows of {method!r} or {baseline!r}")
    names = ecfg.horizon_names
    table = FrameTable.from_rows(res.rows, (metric,), ecfg.horizon_ends)  # built once
    per_video = table.video_means(names)
    means = {  # over videos of the per-video means, as the paired differences take them
        name: {
            h: float(np.mean(c))
            for h in names
            if (c := [v[h][metric] for v in videos.values() if h in v])
        }
        for name, videos in per_video.items()
    }
    lead = {split: {} for split in SPLITS}  # one of the two models alone: its means, no lead
    for split in SPLITS if len(present) == 2 else ():
        paired = paired_differences(
            table, (metric,), names, ecfg.horizon_ends, baseline, split, fallback=False
        )
        lead[split] = {h: c[metric] for h, c in paired.get(method, {}).items()}
    return {"means": means, "lead": lead}


def read_points(path: Path, method: str, baseline: str, metric: str) -> dict[float, dict]:
    """The points of a ``--json`` file ({"X": {"means": ..., "lead": ...}}) of the same method,
    baseline and metric."""
    try:
        data = json.loads(path.read_text())
        points = {float(x): p for x, p in data["points"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise SystemExit(f"{path}: not a points file written by --json ({err})") from None
    if not all(isinstance(p, dict) and {"means", "lead"} <= p.keys() for p in points.values()):
        raise SystemExit(f"{path}: a point without its means and lead")
    if (data.get("method"), data.get("baseline"), data.get("metric")) != (method, baseline, metric):
        raise SystemExit(
            f"{path}: its lead is {data.get('method')} − {data.get('baseline')} in "
            f"{data.get('metric')}, not {method} − {baseline} in {metric}"
        )
    return points


def curve_markdown(points: dict[float, dict], method: str, baseline: str, metric: str, names):
    """A table per horizon: a row per point, the methods' means and the paired leads (two
    decimals for a metric in dB-sized numbers, three for one that lives in [0, 1])."""
    methods = sorted({m for p in points.values() for m in p["means"]})
    values = [v for p in points.values() for c in p["means"].values() for v in c.values()]
    digits = 2 if max(map(abs, values), default=0) >= 2 else 3

    def num(v, sign: str = "") -> str:
        return "-" if v is None else f"{v:{sign}.{digits}f}"

    head = ["x", *methods, *(f"lead, {s} frames" for s in SPLITS)]
    out = [f"{metric}: means, and {method} − {baseline} paired over videos (mean ± 95 %)"]
    for h in names:
        lines = [f"\n{h} horizon\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for x, p in sorted(points.items()):
            cells = [f"{x:g}", *(num(p["means"].get(m, {}).get(h)) for m in methods)]
            for s in SPLITS:
                c = p["lead"][s].get(h)
                cells.append(f"{num(c['mean'], '+')} ± {num(c['ci95'])}" if c else "-")
            lines.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n".join(out)


def plot_curve(points: dict[float, dict], method, baseline, metric, names, x_label, out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from millivid.evaluate.outputs import line_style

    xs = sorted(points)
    methods = sorted({m for p in points.values() for m in p["means"]})
    fig, axes = plt.subplots(
        2, len(names), figsize=(4.2 * len(names), 6.8), squeeze=False, sharex=True
    )  # one x range for every panel, also where the lead has fewer points than the means
    for k, h in enumerate(names):
        top, bottom = axes[0, k], axes[1, k]
        for i, m in enumerate(methods):
            ys = [points[x]["means"].get(m, {}).get(h) for x in xs]
            if any(y is not None for y in ys):
                style = line_style(i)
                top.plot(xs, ys, marker="o", label=m, linewidth=1.3, **style)
        top.set_title(f"{metric}, {h} horizon")
        for j, s in enumerate(SPLITS):
            cells = [points[x]["lead"][s].get(h) for x in xs]
            kept = [(x, c) for x, c in zip(xs, cells) if c]
            if kept:
                bottom.errorbar(
                    [x for x, _ in kept],
                    [c["mean"] for _, c in kept],
                    yerr=[c["ci95"] for _, c in kept],
                    marker="o",
                    capsize=3,
                    label=f"{s} frames",
                    **line_style(j),
                )
        bottom.axhline(0, color="black", linewidth=0.8)
        bottom.set_title(f"{method}\n− {baseline}, {h} horizon", fontsize=9)
        bottom.set_xlabel(x_label)
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    legend = {}  # every method drawn in some top panel, once
    for ax in axes[0]:
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
    if legend:
        fig.legend(
            legend.values(), legend, loc="upper center", ncol=min(len(legend), 6), fontsize=8,
            frameon=False,
        )  # fmt: skip
    for ax in axes[1]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
            break
    fig.tight_layout(rect=(0, 0, 1, 0.95))  # room for the methods' legend above the panels
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--point", action="append", default=[], help="X=per_frame.csv[,...]")
    parser.add_argument(
        "--points-json",
        type=Path,
        action="append",
        default=[],
        help="points written earlier by --json (a --point of the same x replaces its entry)",
    )
    parser.add_argument("--method", required=True)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--metric", default="psnr")
    parser.add_argument("--preset", default="mini", choices=sorted(EVAL_PRESETS))
    parser.add_argument("--x-label", default="training steps")
    parser.add_argument(
        "--methods", help="comma-separated: the methods whose means are shown (default: all)"
    )
    parser.add_argument("--out", type=Path, help="the figure (PNG)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    ecfg = EVAL_PRESETS[args.preset]
    points = {}
    for path in args.points_json:
        points.update(read_points(path, args.method, args.baseline, args.metric))
    if not points and not args.point:
        raise SystemExit("give at least one --point X=per_frame.csv or --points-json FILE")
    given = set()
    for text in args.point:
        x, paths = parse_point(text)
        if x in given:
            raise SystemExit(f"--point {text!r}: x = {x:g} given twice")
        given.add(x)
        points[x] = curve_point(paths, args.method, args.baseline, args.metric, ecfg)
    if args.methods:
        keep = args.methods.split(",")
        for p in points.values():
            p["means"] = {m: v for m, v in p["means"].items() if m in keep}
    names = ecfg.horizon_names
    print(curve_markdown(points, args.method, args.baseline, args.metric, names))
    if args.out:
        plot_curve(points, args.method, args.baseline, args.metric, names, args.x_label, args.out)
        print(f"figure: {args.out}")
    if args.json:
        kept = {f"{x:g}": p for x, p in sorted(points.items())}
        record = {"method": args.method, "baseline": args.baseline, "metric": args.metric}
        args.json.write_text(json.dumps(record | {"points": kept}, indent=1) + "\n")


if __name__ == "__main__":
    main()
