"""Where does one method lead another: videos that come back to the context, or videos that do
not? A method's per-video PSNR lead over a baseline at one horizon, grouped by the share of that
video's frames (at that horizon) that revisit the context, from an evaluation's per_frame.csv.

    python benchmarks/gain_by_revisits.py --csv RUN/eval/per_frame.csv \\
        --method millivid-memory-aug --baseline fullres-memory --horizon long

Prints the mean lead, its correlation with the revisit share over the videos, and the mean lead
per group of videos (no revisit frame, under 10 %, 10–30 %, 30 % and more). Several CSVs (methods
evaluated in different runs on the same test set) are merged as ``millivid evaluate --from-csv``
merges them.
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


def lead_by_revisits(paths: list[Path], method: str, baseline: str, ecfg, horizon: str) -> dict:
    """Per video at ``horizon``: the mean PSNR of ``method`` minus that of ``baseline``, and the
    share of revisit frames; grouped and correlated."""
    rows = results_from_csv(paths, ecfg).rows
    rows = [r | {"revisit_frame": float(r["revisit"] or 0)} for r in rows]
    table = FrameTable.from_rows(rows, ("psnr", "revisit_frame"), ecfg.horizon_ends)
    means = table.video_means(ecfg.horizon_names)
    if method not in means or baseline not in means:
        raise SystemExit(f"{', '.join(map(str, paths))}: no frames of {method} or {baseline}")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--csv", type=Path, nargs="+", required=True, help="per_frame.csv files (merged)"
    )
    parser.add_argument("--method", required=True)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--preset", default="mini", choices=sorted(EVAL_PRESETS))
    parser.add_argument("--horizon", default="long", help="a horizon name of the preset")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    ecfg = EVAL_PRESETS[args.preset]
    if args.horizon not in ecfg.horizon_names:
        raise SystemExit(
            f"--horizon {args.horizon}: expected one of {', '.join(ecfg.horizon_names)}"
        )
    h = ecfg.horizon_names.index(args.horizon)
    first = 1 if h == 0 else ecfg.horizon_ends[h - 1] + 1
    result = lead_by_revisits(args.csv, args.method, args.baseline, ecfg, args.horizon)
    corr = "-" if result["correlation"] is None else f"{result['correlation']:+.2f}"
    print(
        f"{args.method} − {args.baseline}, {args.horizon} horizon (frames {first}–"
        f"{ecfg.horizon_ends[h]}), {result['videos']} videos: {result['lead']:+.2f} dB PSNR; "
        f"correlation with the revisit share {corr}"
    )
    for g in result["groups"]:
        lead = "-" if g["lead"] is None else f"{g['lead']:+.2f} dB"
        print(f"  revisit share {g['revisit_share']}: {g['videos']} videos, {lead}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
