"""Where does one method lead another: videos that come back to the context, or videos that do
not? A method's per-video PSNR lead over a baseline at one horizon, grouped by the share of that
video's frames (at that horizon) that revisit the context, from an evaluation's per_frame.csv.

    python benchmarks/gain_by_revisits.py --csv RUN/eval/per_frame.csv \\
        --method millivid-memory-aug --baseline fullres-memory --horizon long

Prints the mean lead, its correlation with the revisit share over the videos, and the mean lead
per group of videos (no revisit frame, under 10 %, 10–30 %, 30 % and more).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from millivid.presets import EVAL_PRESETS  # noqa: E402

GROUPS = ((0.0, 1e-9, "none"), (1e-9, 0.1, "< 10 %"), (0.1, 0.3, "10-30 %"), (0.3, 1.01, ">= 30 %"))


def lead_by_revisits(path: Path, method: str, baseline: str, first: int, last: int) -> dict:
    """Per video over frames ``first..last`` (1-based): the mean PSNR of ``method`` minus that of
    ``baseline``, and the share of revisit frames; grouped and correlated."""
    psnr: dict[str, dict[str, list[float]]] = {
        method: defaultdict(list),
        baseline: defaultdict(list),
    }
    revisit: dict[str, list[int]] = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["method"] not in psnr or not first <= int(row["frame"]) <= last:
                continue
            psnr[row["method"]][row["video"]].append(float(row["psnr"]))
            if row["method"] == baseline:
                revisit[row["video"]].append(int(row["revisit"] or 0))
    videos = sorted(set(psnr[method]) & set(psnr[baseline]))
    if not videos:
        raise SystemExit(f"{path}: no video has frames of both {method} and {baseline}")
    lead = np.array([np.mean(psnr[method][v]) - np.mean(psnr[baseline][v]) for v in videos])
    share = np.array([np.mean(revisit[v]) for v in videos])
    groups = []
    for lo, hi, name in GROUPS:
        inside = (share >= lo) & (share < hi)
        mean = float(lead[inside].mean()) if inside.any() else None
        groups.append({"revisit_share": name, "videos": int(inside.sum()), "lead": mean})
    corr = float(np.corrcoef(lead, share)[0, 1]) if share.std() > 0 else None
    return {
        "videos": len(videos),
        "lead": float(lead.mean()),
        "correlation": corr,
        "groups": groups,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", type=Path, required=True, help="an evaluation's per_frame.csv")
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
    result = lead_by_revisits(args.csv, args.method, args.baseline, first, ecfg.horizon_ends[h])
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
