"""``millivid evaluate`` (metrics by horizon; ``probe-train``) and ``millivid report`` (HTML)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from millivid.cli.common import add_device_flag, positive_int, positive_int_list
from millivid.evaluate.action_probe_train import train_action_probe
from millivid.evaluate.config import EvalConfig
from millivid.evaluate.markdown import splits_markdown, table_markdown
from millivid.evaluate.outputs import write_set_outputs
from millivid.evaluate.probe_train import train_probe
from millivid.evaluate.report import build_report
from millivid.evaluate.runner import evaluate_pair, evaluate_sets, json_safe, results_from_csv
from millivid.evaluate.suite import METRIC_NAMES, MetricSuite, parse_metrics
from millivid.presets import EVAL_PRESETS, load_preset
from millivid.weights.files import (
    DEFAULT_WEIGHTS_DIR,
    WEIGHT_FILES,
    WEIGHTS_DIR_ENV,
    env_var,
    require_weights,
    resolve_weight,
)


def _add_eval_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        nargs="?",
        choices=["probe-train", "action-probe-train"],
        help="train the label probe or the action probe",
    )
    p.add_argument("--pred", type=Path, help="generated video .npz (key 'video')")
    p.add_argument("--gt", type=Path, help="ground-truth video .npz ('video', 'labels' for probe)")
    p.add_argument("--pred-dir", type=Path, help="folder of .npz (or one sub-folder per method)")
    p.add_argument("--gt-dir", type=Path, help="folder of ground-truth .npz, matched by file name")
    p.add_argument(
        "--start",
        type=int,
        help="first generated frame (0-based) = context frames (default: the 'context' that "
        "millivid generate records in <name>.json beside each prediction; required without it)",
    )
    p.add_argument(
        "--metrics",
        default="psnr,ssim",
        help="comma list: " + ",".join(METRIC_NAMES),
    )
    _add_table_flags(p)
    p.add_argument("--json", action="store_true", help="print the JSON result")
    p.add_argument("--out", type=Path, help="output folder (sets: CSV/table/curves; probe-train)")
    p.add_argument("--preset", default="mini", choices=sorted(EVAL_PRESETS), help="horizon preset")
    p.add_argument(
        "--horizons",
        type=positive_int_list,
        help="horizon ends, 1-based last frames (default: the preset's, 64,256,768 at mini)",
    )
    add_device_flag(p)
    p.add_argument(
        "--batch-frames",
        type=positive_int,
        help="frames per learned-metric forward pass (default: the preset's, 64 at mini)",
    )
    _add_weight_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_probe_train_flags(p)


def _add_table_flags(p: argparse.ArgumentParser) -> None:
    """How the methods of a set are tabulated: from CSV files, which videos, the references of
    the paired differences, the revisit split."""
    p.add_argument(
        "--from-csv",
        nargs="+",
        metavar="CSV",
        help="re-tabulate per_frame.csv files (merged; e.g. methods evaluated in different "
        "runs on the same test set) without recomputing; CSV:METHOD[=NEW],... takes only those "
        "methods of a file, renamed to NEW where given (e.g. "
        "run2/eval/per_frame.csv:millivid=millivid-12000); rows that two files both have must "
        "agree (the trivial baselines of one test set do) and are kept once",
    )
    p.add_argument(
        "--overlap",
        action="store_true",
        help="score only the frames both videos have when a prediction and its ground truth "
        "differ in length (without it, such a pair is refused)",
    )
    p.add_argument(
        "--drop-mismatched",
        action="store_true",
        help="--from-csv: leave out videos that the files label differently (other test videos "
        "under the same name) instead of refusing",
    )
    p.add_argument(
        "--all-videos",
        action="store_true",
        help="sets: also evaluate videos that not every method has (default: only shared ones)",
    )
    p.add_argument(
        "--cache",
        action="store_true",
        help="sets: keep each video's per-frame scores beside it (<video>.scores.json) and reuse "
        "those kept under the same files, metrics and settings (as reproduce does)",
    )
    p.add_argument(
        "--reference",
        help="sets: paired.md compares every method with each of these, comma list (default: "
        "millivid, else the first method), e.g. millivid,nearest-pose; paired.png draws the "
        "generated methods' differences from the first one per horizon",
    )
    add_revisit_flags(p)


def _add_weight_flags(p: argparse.ArgumentParser) -> None:
    """Where the learned metrics' weight files are: a folder, or each file on its own."""
    p.add_argument(
        "--weights-dir",
        metavar="DIR",
        help=f"folder of the published metric weight files (default: ${WEIGHTS_DIR_ENV}, else "
        f"{DEFAULT_WEIGHTS_DIR}); fill it with millivid weights fetch",
    )
    for name, published in WEIGHT_FILES.items():
        p.add_argument(
            f"--{name}-weights",
            default="",
            metavar="PATH",
            help=f"{published.file} (wins over --weights-dir and {env_var(name)})"
            + (
                "; a TorchScript file: loading it runs the code it holds, so give only the "
                "published file"
                if published.file.endswith(".pt") and name in ("fid", "fvd")
                else ""
            ),
        )
    p.add_argument("--probe-weights", default="", metavar="DIR", help="probe folder")
    p.add_argument("--action-probe-weights", default="", metavar="DIR", help="action probe folder")


def _add_probe_train_flags(p: argparse.ArgumentParser) -> None:
    """The flags of ``evaluate probe-train`` and ``evaluate action-probe-train``."""
    p.add_argument("--world-preset", default="mini", help="probe-train: world preset")
    p.add_argument("--steps", type=positive_int, default=1500, help="probe-train: optimiser steps")
    p.add_argument("--videos", type=positive_int, default=24, help="probe-train: training videos")
    p.add_argument("--frames", type=positive_int, default=256, help="probe-train: frames per video")
    p.add_argument("--resume", action="store_true", help="probe-train: resume in --out")
    p.add_argument("--overwrite", action="store_true", help="probe-train: start over in --out")


def add_revisit_flags(p: argparse.ArgumentParser) -> None:
    """--revisit-distance / --revisit-yaw: the thresholds of the revisit split."""
    p.add_argument(
        "--revisit-distance",
        type=float,
        help=f"revisit: blocks in x-y to a context pose (default {EvalConfig.revisit_distance})",
    )
    p.add_argument(
        "--revisit-yaw",
        type=float,
        help=f"revisit: degrees of yaw to that context pose (default {EvalConfig.revisit_yaw})",
    )


def revisit_updates(args: argparse.Namespace) -> dict:
    """EvalConfig fields set by the revisit flags."""
    return {
        f"revisit_{k}": getattr(args, f"revisit_{k}")
        for k in ("distance", "yaw")
        if getattr(args, f"revisit_{k}", None) is not None
    }


def eval_config_from_args(args: argparse.Namespace) -> EvalConfig:
    cfg = EVAL_PRESETS[args.preset]
    updates: dict = {}
    if args.horizons:
        ends = args.horizons
        names = (
            cfg.horizon_names
            if len(ends) == len(cfg.horizon_names)
            else tuple(f"h{i + 1}" for i in range(len(ends)))
        )
        updates.update(horizon_ends=ends, horizon_names=names)
    if args.batch_frames:
        updates["batch_frames"] = args.batch_frames
    if args.reference:
        updates["references"] = tuple(r.strip() for r in args.reference.split(",") if r.strip())
    updates.update(revisit_updates(args))
    for name in list(WEIGHT_FILES) + ["probe", "action_probe"]:
        value = getattr(args, f"{name}_weights")
        if value:
            updates[f"{name}_weights"] = value
        elif name in WEIGHT_FILES and getattr(args, "weights_dir", None):
            updates[f"{name}_weights"] = str(resolve_weight(name, "", args.weights_dir)[0])
    return replace(cfg, **updates)


def check_weight_files(args: argparse.Namespace, metrics: Sequence[str]) -> None:
    """Fail before any work, listing every weight file ``metrics`` need and do not find."""
    flags = {name: getattr(args, f"{name}_weights") for name in WEIGHT_FILES}
    require_weights(metrics, flags, args.weights_dir)


def run_evaluate(args: argparse.Namespace) -> int:
    if args.action in ("probe-train", "action-probe-train"):
        return run_probe_train(args)
    cfg = eval_config_from_args(args)
    if args.from_csv:
        merged = results_from_csv(
            args.from_csv, cfg, not args.all_videos, drop_mismatched=args.drop_mismatched
        )
        return _write_sets(merged, args, cfg)
    metrics = parse_metrics(args.metrics)
    check_weight_files(args, metrics)
    args.start = generated_start(args)
    suite = MetricSuite(cfg, args.device)
    if args.pred and args.gt:
        result = evaluate_pair(args.pred, args.gt, args.start, metrics, cfg, suite, args.overlap)
        if args.json:
            print(json.dumps(json_safe(result)))
        else:
            for h, vals in result["horizons"].items():
                print(h.ljust(8), "  ".join(f"{m}={v:.4f}" for m, v in vals.items()))
            for split in ("revisit", "novel"):
                for h, vals in result["splits"]["horizons"].get(split, {}).items():
                    line = "  ".join(f"{m}={v:.4f}" for m, v in vals.items())
                    print(f"{h} {split}".ljust(16), line)
        return 0
    if args.pred_dir and args.gt_dir:
        res = evaluate_sets(
            args.pred_dir,
            args.gt_dir,
            args.start,
            metrics,
            cfg,
            suite,
            not args.no_progress,
            common=not args.all_videos,
            overlap=args.overlap,
            cache=args.cache,
        )
        return _write_sets(res, args, cfg)
    raise ValueError(
        "give --pred and --gt, --pred-dir and --gt-dir, or --from-csv (or the probe-train action)"
    )


def generated_start(args: argparse.Namespace) -> int:
    """``--start``, else the context length recorded beside the predictions (``<name>.json`` of
    millivid generate), which must agree; without either the start is an error, because scoring
    from frame 0 would count the context frames as generated ones."""
    if args.start is not None:
        if args.start < 0:
            raise ValueError(f"--start {args.start}: the first generated frame is >= 0")
        return args.start
    if args.pred:
        preds = [Path(args.pred)]
    elif args.pred_dir:
        preds = sorted(Path(args.pred_dir).rglob("*.npz"))
    else:
        return 0  # nothing to score (the usage error follows)
    starts = {}
    for pred in preds:
        if not pred.is_file():
            raise FileNotFoundError(f"{pred}: no such prediction file")
        side = pred.with_suffix(".json")
        if not side.is_file():
            raise ValueError(
                f"{pred}: no {side.name} from millivid generate beside it to say where the "
                "generated frames start: give --start (the number of context frames)"
            )
        try:
            starts[pred] = int(json.loads(side.read_text())["context"])
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{side}: no readable 'context' ({err}): give --start") from None
    if len(set(starts.values())) > 1:
        raise ValueError(
            f"the predictions record different context lengths {sorted(set(starts.values()))}: "
            "evaluate them separately or give --start"
        )
    if not starts:
        raise ValueError(f"{args.pred_dir}: no .npz predictions")
    return next(iter(starts.values()))


def _write_sets(res, args: argparse.Namespace, cfg: EvalConfig) -> int:
    out = args.out or Path("eval")
    paths = write_set_outputs(res, out, cfg.horizon_names, args.start or 0, cfg.horizon_ends)
    if args.json:
        print(json.dumps(json_safe({"horizons": res.horizons, "files": paths})))
    else:
        print(table_markdown(res.horizons, res.metrics, cfg.horizon_names))
        print(splits_markdown(res, cfg.horizon_names))
        print(f"wrote {', '.join([paths['csv'], paths['table'], *paths['curves']])}")
    return 0


def run_probe_train(args: argparse.Namespace) -> int:
    """``probe-train`` (label probe) and ``action-probe-train`` (inverse-dynamics probe)."""
    if not args.out:
        raise ValueError(f"{args.action} needs --out DIR")
    trainer = train_probe if args.action == "probe-train" else train_action_probe
    report = trainer(
        args.out,
        world=load_preset(args.world_preset).world,
        world_preset=args.world_preset,
        steps=args.steps,
        videos=args.videos,
        frames=args.frames,
        device=args.device,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    print(json.dumps(report, indent=2))
    return 0


def run_report(args: argparse.Namespace) -> int:
    out = build_report(args.run, args.out, max_videos=args.max_videos, max_frames=args.max_frames)
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="metrics of generated vs ground-truth videos by horizon; probe-train",
        description="Compare generated videos with ground truth (paper §4, Table 1). "
        "Weights of learned metrics are local files in one folder (--weights-dir; "
        "millivid weights fetch downloads them): docs/EVALUATION.md.",
    )
    _add_eval_flags(p)
    p.set_defaults(func=run_evaluate)
    r = subparsers.add_parser("report", help="one self-contained HTML page for a RUN folder")
    r.add_argument("run", type=Path, help="RUN folder (layout in docs/EVALUATION.md)")
    r.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write")
    r.add_argument("--max-videos", type=positive_int, default=8, help="test videos shown")
    r.add_argument("--max-frames", type=positive_int, default=768, help="frames per video shown")
    r.set_defaults(func=run_report)
