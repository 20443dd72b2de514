"""How much of a PSNR lead is blur? Two methods' rollouts compared at matched sharpness.

    python benchmarks/matched_sharpness.py --pred-dir RUN/rollouts --gt-dir RUN/gt --start 256 \\
        --method millivid-memory-aug --baseline fullres-memory

PSNR rewards a blurred guess over a sharp wrong one, so a blurrier model can lead in PSNR by
hedging rather than by knowing more. Here the sharper of the two methods is blurred (a Gaussian
of each ``--sigmas`` value, in pixels) until its mean ``sharpness`` over a horizon's frames falls
to the other's, and its PSNR at that blur (interpolated between the two nearest sigmas) takes
the place of its own: the lead of ``--method`` over ``--baseline`` at matched sharpness, paired
over videos (mean ± 95 % interval). A lead that survives the matching is not a hedge; the part
that goes away is. Prints per horizon (of the preset, cut at the frames the rollouts have): both
methods' PSNR and sharpness, the sigma that matches them, the lead as scored and as matched.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from millivid.data import load_video  # noqa: E402
from millivid.evaluate.horizons import ci95  # noqa: E402
from millivid.evaluate.image_metrics import gaussian_window, psnr, sharpness  # noqa: E402
from millivid.presets import EVAL_PRESETS  # noqa: E402

SIGMAS = (0.0, 0.3, 0.5, 0.7, 0.9, 1.1, 1.4, 1.8, 2.4)


def blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Same-size Gaussian blur (reflected borders), rounded back to uint8: [T, H, W, 3]."""
    if sigma <= 0:
        return frames
    k = gaussian_window(sigma).float()
    r = len(k) // 2
    x = frames.permute(0, 3, 1, 2).float()
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def per_video_scores(pred, gt, spans, sigmas) -> np.ndarray:
    """[len(sigmas), len(spans), 2]: mean PSNR and mean sharpness of ``pred`` blurred by each
    sigma over each (first, last) frame-index span (uint8 [T, H, W, 3] tensors)."""
    out = np.zeros((len(sigmas), len(spans), 2))
    for i, s in enumerate(sigmas):
        for j, (a, b) in enumerate(spans):
            p = blur(pred[a:b], s)
            out[i, j] = psnr(p, gt[a:b]).mean().item(), np.nanmean(sharpness(p, gt[a:b]).numpy())
    return out


def matched_lead(method: np.ndarray, baseline: np.ndarray, sigmas) -> dict:
    """One horizon. ``method``, ``baseline``: [videos, sigmas, 2] (PSNR, sharpness per blur).
    The sharper one (at sigma 0, in the mean over videos) is blurred to the other's sharpness."""
    raw = method[:, 0, 0] - baseline[:, 0, 0]
    blur_method = method[:, 0, 1].mean() > baseline[:, 0, 1].mean()
    sharp, soft = (method, baseline) if blur_method else (baseline, method)
    target = soft[:, 0, 1].mean()
    curve = sharp[:, :, 1].mean(0)  # falls with sigma
    if target < curve[-1]:
        raise SystemExit(f"the largest sigma ({sigmas[-1]}) does not blur enough: add larger ones")
    k = max(1, int(np.searchsorted(-curve, -target)))
    w = (curve[k - 1] - target) / (curve[k - 1] - curve[k]) if curve[k - 1] != curve[k] else 0.0
    matched_psnr = (1 - w) * sharp[:, k - 1, 0] + w * sharp[:, k, 0]
    matched = (soft[:, 0, 0] - matched_psnr) * (-1 if blur_method else 1)

    def cell(d):
        return {"mean": float(d.mean()), "ci95": ci95(d)}

    return {
        "videos": len(raw),
        "blurred": "method" if blur_method else "baseline",
        "sigma": float((1 - w) * sigmas[k - 1] + w * sigmas[k]),
        "psnr": [float(method[:, 0, 0].mean()), float(baseline[:, 0, 0].mean())],
        "sharpness": [float(method[:, 0, 1].mean()), float(baseline[:, 0, 1].mean())],
        "lead": cell(raw),
        "matched_lead": cell(matched),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pred-dir", type=Path, required=True, help="one folder per method")
    parser.add_argument("--gt-dir", type=Path, required=True)
    parser.add_argument("--start", type=int, required=True, help="context frames")
    parser.add_argument("--method", required=True)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--preset", default="mini", choices=sorted(EVAL_PRESETS))
    parser.add_argument("--sigmas", default=",".join(map(str, SIGMAS)), help="blur grid, pixels")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    sigmas = sorted({float(s) for s in args.sigmas.split(",")} | {0.0})
    ecfg = EVAL_PRESETS[args.preset]
    folders = [args.pred_dir / m for m in (args.method, args.baseline)]
    for f in folders:
        if not f.is_dir():
            raise SystemExit(f"{f}: no such rollouts folder")
    names = sorted(
        p.stem for p in (args.gt_dir).glob("*.npz") if all((f / p.name).is_file() for f in folders)
    )
    if not names:
        raise SystemExit(f"no video of {args.gt_dir} has rollouts of both methods")
    scores, spans = {m: [] for m in (args.method, args.baseline)}, None
    for name in names:
        gt = torch.as_tensor(load_video(args.gt_dir / f"{name}.npz", keys=[]).video)
        preds = [torch.as_tensor(load_video(f / f"{name}.npz", keys=[]).video) for f in folders]
        length = min(len(gt), *(len(p) for p in preds)) - args.start
        if spans is None:
            ends = [min(e, length) for e in ecfg.horizon_ends]
            starts = [0, *ecfg.horizon_ends[:-1]]
            kept = [(h, a, b) for h, a, b in zip(ecfg.horizon_names, starts, ends) if b > a]
            spans = [(args.start + a, args.start + b) for _, a, b in kept]
            horizons = [h for h, _, _ in kept]
        for m, p in zip(scores, preds):
            scores[m].append(per_video_scores(p, gt, spans, sigmas))
    result = {}
    print(f"{args.method} − {args.baseline}, {len(names)} videos; the sharper one blurred to the")
    print("other's sharpness (PSNR and sharpness: method / baseline)\n")
    print("| horizon | PSNR | sharpness | blurred | sigma | lead | lead at matched sharpness |")
    print("|---|---|---|---|---|---|---|")
    for j, h in enumerate(horizons):
        a, b = (np.stack([v[:, j] for v in scores[m]]) for m in (args.method, args.baseline))
        r = result[h] = matched_lead(a, b, sigmas)
        print(
            f"| {h} | {r['psnr'][0]:.2f} / {r['psnr'][1]:.2f} | {r['sharpness'][0]:.3f} / "
            f"{r['sharpness'][1]:.3f} | {r['blurred']} | {r['sigma']:.2f} | "
            f"{r['lead']['mean']:+.2f} ± {r['lead']['ci95']:.2f} | "
            f"{r['matched_lead']['mean']:+.2f} ± {r['matched_lead']['ci95']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
