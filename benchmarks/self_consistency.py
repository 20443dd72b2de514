"""Does a rollout show a place as it showed it before? Consistency with its own earlier frames.

    python benchmarks/self_consistency.py --pred-dir RUN/rollouts --gt-dir RUN/gt --start 256

PSNR against the ground truth rewards memory only where the camera comes back to a view of the
*context* (docs/results/HISTORY.md, "The memory ceiling"). This measures the other half of
long-range consistency, returns within the generated frames. For every generated frame j whose
ground-truth pose is within 2 blocks and 15° of an earlier generated frame i <= j - gap (the nearest
such pose), and a frame k of the same window that shows somewhere else (pose gap above twice the
thresholds, the nearest to i in time), the **return contrast** is PSNR(j, i) − PSNR(j, k): how much
more alike the video makes two views of one place than two views of different places. The truth has
its own contrast; a rollout that remembers what it generated comes close to it, one that forgets has
none, and so does a static or washed-out video (every pair alike: the context mean scores 100 dB for
both). The score per method is its contrast minus the truth's, per video and averaged (0 = as
consistent as the world; the 95 % interval is 1.96 sd / sqrt(n)).

Prints per method (a folder of <video>.npz under --pred-dir, as `millivid evaluate --pred-dir`
reads them): videos and pairs, mean PSNR(j, i), mean contrast, and contrast minus the truth's;
with ``--reference METHOD`` also each method's contrast minus that method's, paired over videos.
``--json`` keeps the per-video values too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from millivid.data import load_video  # noqa: E402
from millivid.evaluate.config import EvalConfig  # noqa: E402
from millivid.evaluate.horizons import ci95  # noqa: E402
from millivid.evaluate.image_metrics import psnr  # noqa: E402
from millivid.evaluate.splits import GAP_TOLERANCE, nearest_context, pose_gaps  # noqa: E402

ELSEWHERE = 2.0  # a frame k shows somewhere else: pose gap above twice the thresholds


def return_triples(
    poses: np.ndarray,
    start: int,
    gap: int,
    distance: float = EvalConfig.revisit_distance,
    yaw: float = EvalConfig.revisit_yaw,
) -> list[tuple[int, int, int]]:
    """(i, j, k) for every frame j >= start + gap whose pose (float [T, 5]) is within the
    thresholds of a frame in [start, j - gap]: i the nearest such pose (ties as
    ``nearest_context``), k the frame of that window nearest to i in time whose pose gap to j
    exceeds ``ELSEWHERE`` (the earlier on a tie); j is left out when there is no such k."""
    out = []
    for j in range(start + gap, len(poses)):
        window = poses[start : j - gap + 1]
        index, gaps = nearest_context(poses[j : j + 1], window, distance, yaw)
        if gaps[0] > 1.0 + GAP_TOLERANCE:
            continue
        far = np.flatnonzero(pose_gaps(poses[j : j + 1], window, distance, yaw)[0] > ELSEWHERE)
        if len(far):
            k = far[np.argmin(np.abs(far - index[0]))]
            out.append((start + int(index[0]), j, start + int(k)))
    return out


def triple_psnr(video: np.ndarray, triples: list[tuple[int, int, int]]) -> np.ndarray:
    """PSNR(j, i) and PSNR(j, k) of each triple: video uint8 [T, H, W, 3] -> float64 [n, 2]."""
    i, j, k = (torch.as_tensor(np.asarray(x)) for x in zip(*triples, strict=True))
    frames = torch.as_tensor(video)
    return torch.stack([psnr(frames[j], frames[i]), psnr(frames[j], frames[k])], 1).numpy()


def self_consistency(pred_dir: Path, gt_dir: Path, start: int, gap: int) -> dict:
    """{method: {videos, pairs, same, contrast, truth, diff, ci95}} over the videos with
    returns: mean PSNR(j, i), mean contrast, the truth's, and contrast − truth's per video."""
    gts = {p.stem: p for p in sorted(gt_dir.glob("*.npz"))}
    if not gts:
        raise SystemExit(f"{gt_dir}: no ground-truth .npz videos")
    truths: dict[str, tuple] = {}
    out = {}
    for method_dir in sorted(p for p in pred_dir.iterdir() if p.is_dir()):
        per_video, scores, truth_scores = {}, [], []
        for name, gt_path in gts.items():
            pred_path = method_dir / f"{name}.npz"
            if not pred_path.is_file():
                continue
            if name not in truths:
                gt = load_video(gt_path, keys=["poses"])
                triples = return_triples(gt.poses, start, gap)
                truths[name] = (triples, triple_psnr(gt.video, triples) if triples else None)
            triples, truth = truths[name]
            if not triples:
                continue
            video = load_video(pred_path, keys=[]).video
            if len(video) <= max(t[1] for t in triples):
                raise SystemExit(f"{pred_path}: {len(video)} frames, fewer than the ground truth's")
            score = triple_psnr(video, triples)
            contrast, truth_contrast = (x[:, 0] - x[:, 1] for x in (score, truth))
            per_video[name] = float(contrast.mean() - truth_contrast.mean())
            scores.append(score)
            truth_scores.append(truth)
        if not per_video:
            continue
        d, score, truth = (
            np.array(list(per_video.values())),
            *map(np.concatenate, (scores, truth_scores)),
        )
        out[method_dir.name] = {
            "videos": len(d),
            "pairs": len(score),
            "same": float(score[:, 0].mean()),
            "contrast": float((score[:, 0] - score[:, 1]).mean()),
            "truth": float((truth[:, 0] - truth[:, 1]).mean()),
            "diff": float(d.mean()),
            "ci95": ci95(d),
            "per_video": per_video,
        }
    return out


def paired_with(result: dict, reference: str) -> dict:
    """{method: {videos, diff, ci95}}: each method's contrast minus ``reference``'s, paired over
    the videos both have (the same triples, so the truth's contrast cancels)."""
    if reference not in result:  # none of its videos has a return
        return {}
    ref = result[reference]["per_video"]
    out = {}
    for method, r in result.items():
        shared = [v for v in r["per_video"] if v in ref]
        if method != reference and shared:
            d = np.array([r["per_video"][v] - ref[v] for v in shared])
            out[method] = {"videos": len(d), "diff": float(d.mean()), "ci95": ci95(d)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pred-dir", type=Path, required=True, help="one folder per method")
    parser.add_argument("--gt-dir", type=Path, required=True)
    parser.add_argument("--start", type=int, required=True, help="context frames")
    parser.add_argument("--gap", type=int, default=64, help="frames back a return must reach")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--reference", help="also: each method's contrast minus this one's, paired")
    args = parser.parse_args()
    if args.reference and not (args.pred_dir / args.reference).is_dir():
        raise SystemExit(
            f"--reference {args.reference}: no folder {args.pred_dir / args.reference}"
        )
    result = self_consistency(args.pred_dir, args.gt_dir, args.start, args.gap)
    print(f"returns within the generated frames, at least {args.gap} frames back")
    print("| method | videos | pairs | PSNR(j, i) | contrast | truth's | contrast − truth's |")
    print("|---|---|---|---|---|---|---|")
    for m, r in result.items():
        print(
            f"| {m} | {r['videos']} | {r['pairs']} | {r['same']:.2f} | {r['contrast']:+.2f} | "
            f"{r['truth']:+.2f} | {r['diff']:+.2f} ± {r['ci95']:.2f} |"
        )
    if args.reference:
        paired = paired_with(result, args.reference)
        print(f"\n| method − {args.reference} | videos | contrast difference |\n|---|---|---|")
        for m, r in paired.items():
            print(f"| {m} | {r['videos']} | {r['diff']:+.2f} ± {r['ci95']:.2f} |")
        result = {"methods": result, "paired": {args.reference: paired}}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
