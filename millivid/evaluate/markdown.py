"""The markdown of an evaluation: Table 1 (``table_markdown``), the revisit / novel, memory-gain
and turn / forward tables (``splits_markdown``) and the paired differences (``paired_markdown``).
Best values are bold; trivial baselines are rows like any method, so a model they beat is not."""

from __future__ import annotations

from collections.abc import Sequence

from millivid.evaluate.config import EvalConfig
from millivid.evaluate.results import SetResults
from millivid.evaluate.splits import ACTION_METRICS
from millivid.evaluate.suite import DISPLAY, HIGHER_IS_BETTER, TARGET_VALUE, goodness

SHORT_HORIZON = {"short": "short", "medium": "med.", "long": "long"}
SHORT_SPLIT = {"revisit": "rev.", "novel": "nov.", "turn": "turn", "forward": "fwd."}


def display_name(metric: str) -> str:
    return DISPLAY.get(metric, metric)


def direction_arrow(metric: str) -> str:
    if metric in TARGET_VALUE:
        return f"→{TARGET_VALUE[metric]:g}"
    return "↑" if HIGHER_IS_BETTER.get(metric, True) else "↓"


def _fmt(metric: str, value: float, signed: bool = False) -> str:
    digits = 2 if metric in ("psnr", "fid") else 1 if metric in ("matches", "fvd") else 3
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def grid_table(
    cells: dict[str, dict[tuple, float]],
    columns: Sequence[tuple[tuple, str, str]],
    signed: bool = False,
    drop_empty: bool = True,
) -> str:
    """One markdown table: a row per method, a column per (key, header, metric) of ``columns``
    that has a value; cells {method: {key: value}} (missing = –); with several methods the best
    value of each column in bold (the metric's direction; ``signed`` values are gains: higher is
    better). With ``drop_empty`` columns without a value are left out ("" when none is left)."""
    methods = list(cells)
    if drop_empty:
        columns = [c for c in columns if any(cells[k].get(c[0]) is not None for k in methods)]
        if not columns:
            return ""
    lines = ["| " + " | ".join(["Method", *(c[1] for c in columns)]) + " |"]
    lines.append("|" + "---|" * (len(columns) + 1))
    best = {}
    for key, _, m in columns:
        vals = [cells[k][key] for k in methods if cells[k].get(key) is not None]
        vals = [v for v in vals if v == v]  # NaN is never best
        if vals:
            best[key] = max(vals) if signed else max(vals, key=lambda v, m=m: goodness(m, v))
    for k in methods:
        row = [k]
        for key, _, m in columns:
            v = cells[k].get(key)
            text = "–" if v is None else _fmt(m, v, signed)
            bold = v is not None and len(methods) > 1 and v == best.get(key)
            row.append(f"**{text}**" if bold else text)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


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
    cells = _horizon_cells(horizons)
    blocks = []
    for i in range(0, len(metrics), per_table):
        columns = [
            ((h, m), f"{display_name(m)} {direction_arrow(m)} {SHORT_HORIZON.get(h, h)}", m)
            for m in metrics[i : i + per_table]
            for h in present
        ]
        blocks.append(grid_table(cells, columns, drop_empty=False))
    return "\n\n".join(blocks) + "\n"


def _share_line(shares: dict, column: str, names: Sequence[str]) -> str:
    parts = [
        f"{h} {100 * shares[h][column]:.0f} % of {shares[h]['frames']} frames"
        for h in names
        if h in shares and shares[h].get(column) is not None
    ]
    return ", ".join(parts)


def _split_columns(metrics, names, splits) -> list[tuple[tuple, str, str]]:
    return [
        (
            (s, h, m),
            f"{display_name(m)} {direction_arrow(m)} {SHORT_HORIZON.get(h, h)} {SHORT_SPLIT[s]}",
            m,
        )
        for m in metrics
        for h in names
        for s in splits
    ]


def _split_cells(splits: dict) -> dict[str, dict[tuple, float]]:
    """{method: {split: {h: {m: v}}}} -> {method: {(split, h, m): v}}."""
    return {
        k: {(s, h, m): v for s, hs in by.items() for h, ms in hs.items() for m, v in ms.items()}
        for k, by in splits.items()
    }


def splits_markdown(results: SetResults, horizon_names: Sequence[str], per_table: int = 2) -> str:
    """table.md's split sections: revisit / novel means with the share of revisit frames, the
    memory gains, and action metrics on turn / forward frames ("" when no split is known)."""
    shares, metrics = results.shares, [m for m in results.metrics if m in _frame_metrics(results)]
    names = [h for h in horizon_names if h in shares]
    cells, out = _split_cells(results.splits), []
    t, default = results.thresholds, EvalConfig()
    distance = t.get("revisit_distance", default.revisit_distance)
    yaw = t.get("revisit_yaw", default.revisit_yaw)
    if _share_line(shares, "revisit", names):
        out += [
            "## Revisit and novel frames",
            f"A generated frame is a *revisit* when its ground-truth pose is within {distance:g} "
            f"blocks (x-y) and {yaw:g}° (yaw) of some context frame's pose, else *novel*. "
            "Revisit frames: "
            + _share_line(shares, "revisit", names)
            + " (frames of the test set).",
        ]
        for i in range(0, len(metrics), per_table):
            group = metrics[i : i + per_table]
            out.append(grid_table(cells, _split_columns(group, names, ("revisit", "novel"))))
        out += _memory_markdown(results.memory, metrics, names)
    actions = [m for m in metrics if m in ACTION_METRICS]
    if actions and _share_line(shares, "turn", names):
        out += [
            "## Actions on turn and forward frames",
            "Turn frames (ground-truth action left or right): "
            + _share_line(shares, "turn", names)
            + ".",
            grid_table(cells, _split_columns(actions, names, ("turn", "forward"))),
        ]
    out = [part for part in out if part]
    return "\n\n".join(out) + "\n" if out else ""


def _frame_metrics(results: SetResults) -> set[str]:
    return {
        m for by in results.splits.values() for hs in by.values() for ms in hs.values() for m in ms
    }


MEMORY_TEXT = {
    "vs_novel": "Revisit − novel: a method's mean on revisit frames minus its mean on novel frames, "
    "signed so that positive is better (for ↓ metrics the difference is negated).",
    "vs_reference": "Revisit frames, method − {ref} on the same frames (positive = better than "
    "recalling the nearest context frame; same sign convention):",
}


def _horizon_cells(by_method: dict) -> dict[str, dict[tuple, float]]:
    """{method: {h: {m: v}}} -> {method: {(h, m): v}}."""
    return {
        k: {(h, m): v for h, ms in hs.items() for m, v in ms.items()} for k, hs in by_method.items()
    }


def _memory_markdown(
    memory: dict, metrics: Sequence[str], names: Sequence[str], per_table: int = 4
) -> list[str]:
    """The two memory-gain tables (positive = better on revisit frames), ``per_table`` metrics
    per table; [] when both are empty."""
    out = []
    for key, text in MEMORY_TEXT.items():
        cells = _horizon_cells(memory.get(key) or {})
        tables = []
        for i in range(0, len(metrics), per_table):
            group = metrics[i : i + per_table]
            columns = [
                ((h, m), f"{display_name(m)} {SHORT_HORIZON.get(h, h)}", m)
                for m in group
                for h in names
            ]
            tables.append(grid_table(cells, columns, signed=True))
        if any(tables):
            out += [text.format(ref=memory.get("reference")), *[t for t in tables if t]]
    return ["## Memory gain", *out] if out else []


def paired_markdown(
    by_split: dict[str, dict[str, dict[str, dict[str, dict[str, float]]]]],
    reference: str,
    horizon_names: Sequence[str],
) -> str:
    """paired.md for one reference: per method, its mean difference from ``reference`` over the
    videos both have, ± the 95% interval, and in brackets the share of videos where it is better;
    a row per metric over all frames, then (when known) over its revisit / novel frames and, for
    action metrics, turn / forward frames. ``by_split``: {split: {method: {h: {m: cell}}}}."""
    lines = [
        f"Difference from **{reference}**, per video then averaged: mean ± 95% interval "
        "(1.96·sd/√n), in brackets the share of videos where the method is better.",
        "",
    ]
    for method, cells in by_split.get("all", {}).items():
        metrics = list(dict.fromkeys(m for h in cells.values() for m in h))
        present = [h for h in horizon_names if h in cells]
        n = next(iter(next(iter(cells.values())).values()))["videos"]
        lines += [f"### {method} − {reference} ({n} videos)", ""]
        lines.append("| metric | " + " | ".join(present) + " |")
        lines.append("|---|" + "---|" * len(present))
        for m in metrics:
            splits = ("all", "revisit", "novel") + (
                ("turn", "forward") if m in ACTION_METRICS else ()
            )
            for s in splits:
                by_h = by_split.get(s, {}).get(method)
                if by_h is None:
                    continue
                label = display_name(m) if s == "all" else f"{display_name(m)} · {s}"
                row = [_paired_cell(by_h.get(h, {}).get(m), n) for h in present]
                lines.append(f"| {label} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def _paired_cell(c: dict | None, n: int) -> str:
    if c is None:
        return "–"
    # one video has no spread: say so instead of printing "± nan"
    spread = f" ± {c['ci95']:.3f}" if c["ci95"] == c["ci95"] else " (one video: no interval)"
    text = f"{c['mean']:+.3f}{spread} ({100 * c['wins']:.0f} %)"
    if c["videos"] == n:
        return text
    return f"{text} [{c['videos']} video{'s' if c['videos'] != 1 else ''}]"
