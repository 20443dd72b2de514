"""Where does one method lead another: videos that come back to the context, or videos that do
not? A method's per-video PSNR lead over a baseline at one horizon, grouped by the share of that
video's frames (at that horizon) that revisit the context, from an evaluation's per_frame.csv.

    python benchmarks/gain_by_revisits.py --csv RUN/eval/per_frame.csv \\
        --method millivid-memory-aug --baseline fullres-memory --horizon long

Prints the mean lead, its correlation with the revisit share over the videos, and the mean lead
per group of videos (no revisit frame, under 10 %, 10–30 %, 30 % and more). Then how much of the
lead is made on revisit frames and how much on novel ones, and the **memory ceiling**: the lead
the method would have if it recalled every revisit frame as well as ``--oracle`` does (default
``autoencoder``, the decoded ground truth: the best any model decoding through that autoencoder
can recall), its novel frames unchanged. A ceiling below a target lead says that the target
cannot be met through memory on this test set. Several CSVs (methods evaluated in different runs
on the same test set) are merged as ``millivid evaluate --from-csv`` merges them
(``--drop-mismatched`` as there).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from millivid.evaluate.horizons import FrameTable  # noqa: E402
from millivid.evaluate.results import results_from_csv  # noqa: E402
from millivid.presets import EVAL_PRESETS  # noqa: E402

GROUPS = ((0.0, 1e-9, "none"), (1e-9, 0.1, "< 10 %"), (0.1, 0.3, "10-30 %"), (0.3, 1.01, ">= 30 %"))


def lead_by_revisits(rows: list[dict], method: str, baseline: str, ecfg, horizon: str) -> dict:
    """Per video at ``horizon``: the mean PSNR of ``method`` minus that of ``baseline``, and the
    share of revisit frames; grouped and correlated (``rows``: a per_frame.csv's)."""
    rows = [r | {"revisit_frame": float(r["revisit"] or 0)} for r in rows]
    table = FrameTable.from_rows(rows, ("psnr", "revisit_frame"), ecfg.horizon_ends)
    means = table.video_means(ecfg.horizon_names)
    if method not in means or baseline not in means:
        raise SystemExit(f"no frames of {method} or {baseline} in the CSVs")
    cells = [
        (means[method][v][horizon]["psnr"] - cell[horizon]["psnr"], cell[horizon]["revisit_frame"])
        for v, cell in means[baseline].items()
        if horizon in cell and horizon in means[method].get(v, {})
    ]
    lead, share = (np.array(x) for x in zip(*cells, strict=True))
    groups = []
    for lo, hi, name in GROUPS:
        inside = (share >= lo) & (share < hi)
        mean = float(lead[inside].mean()) if inside.any() else None
        groups.append({"revisit_share": name, "videos": int(inside.sum()), "lead": mean})
    corr = float(np.corrcoef(lead, share)[0, 1]) if share.std() > 0 else None
    return {"videos": len(lead), "lead": float(lead.mean()), "correlation": corr, "groups": groups}


def memory_ceiling(rows: list[dict], method: str, baseline: str, oracle: str, span) -> dict:
    """Over the frames ``span`` = (first, last) that all three have: the revisit share, the lead of
    ``method`` over ``baseline`` made on revisit and on novel frames (they add up to the lead),
    and the ceiling lead, with each revisit frame at the better of ``method`` and ``oracle``."""
    first, last = span
    cells: dict[str, dict] = {method: {}, baseline: {}, oracle: {}}
    for r in rows:
        if r["method"] in cells and first <= r["frame"] <= last:
            cells[r["method"]][(r["video"], r["frame"])] = (r["psnr"], float(r["revisit"] or 0))
    keys = sorted(set.intersection(*(set(c) for c in cells.values())))
    if not keys:
        raise SystemExit(f"no frames {first}-{last} that {method}, {baseline} and {oracle} share")
    m, b, o = (np.array([cells[name][k][0] for k in keys]) for name in (method, baseline, oracle))
    revisit = np.array([cells[method][k][1] for k in keys])
    n = len(keys)
    on_revisits = float(((m - b) * revisit).sum() / n)
    return {
        "frames": n,
        "revisit_share": float(revisit.mean()),
        "lead": float((m - b).mean()),
        "lead_on_revisit_frames": on_revisits,
        "lead_on_novel_frames": float(((m - b) * (1 - revisit)).sum() / n),
        "ceiling_lead": float((np.where(revisit > 0, np.maximum(m, o), m) - b).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--csv", type=Path, nargs="+", required=True, help="per_frame.csv files (merged)"
    )
    parser.add_argument("--method", required=True)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--preset", default="mini", choices=sorted(EVAL_PRESETS))
    parser.add_argument("--horizon", default="long", help="a horizon name of the preset")
    parser.add_argument(
        "--oracle",
        default="autoencoder",
        help="the method whose revisit frames set the memory ceiling ('' to skip)",
    )
    parser.add_argument(
        "--drop-mismatched",
        action="store_true",
        help="leave out videos the CSVs label differently instead of refusing",
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    ecfg = EVAL_PRESETS[args.preset]
    if args.horizon not in ecfg.horizon_names:
        raise SystemExit(
            f"--horizon {args.horizon}: expected one of {', '.join(ecfg.horizon_names)}"
        )
    h = ecfg.horizon_names.index(args.horizon)
    first = 1 if h == 0 else ecfg.horizon_ends[h - 1] + 1
    rows = results_from_csv(args.csv, ecfg, drop_mismatched=args.drop_mismatched).rows
    result = lead_by_revisits(rows, args.method, args.baseline, ecfg, args.horizon)
    if args.oracle and not any(r["method"] == args.oracle for r in rows):
        print(f"no frames of {args.oracle} in the CSVs: no memory ceiling", file=sys.stderr)
    elif args.oracle:
        span = (first, ecfg.horizon_ends[h])
        result["memory"] = memory_ceiling(rows, args.method, args.baseline, args.oracle, span)
    corr = "-" if result["correlation"] is None else f"{result['correlation']:+.2f}"
    print(
        f"{args.method} − {args.baseline}, {args.horizon} horizon (frames {first}–"
        f"{ecfg.horizon_ends[h]}), {result['videos']} videos: {result['lead']:+.2f} dB PSNR; "
        f"correlation with the revisit share {corr}"
    )
    for g in result["groups"]:
        lead = "-" if g["lead"] is None else f"{g['lead']:+.2f} dB"
        print(f"  revisit share {g['revisit_share']}: {g['videos']} videos, {lead}")
    if "memory" in result:
        c = result["memory"]
        print(
            f"  {c['revisit_share']:.1%} of the frames revisit: {c['lead_on_revisit_frames']:+.2f} "
            f"dB of the lead is made on them, {c['lead_on_novel_frames']:+.2f} dB on novel frames; "
            f"recalling every revisit frame as well as {args.oracle} would make the lead "
            f"{c['ceiling_lead']:+.2f} dB (memory ceiling)"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
