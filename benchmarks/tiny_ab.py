"""A cheap A/B test of a config change on the CPU: tiny-preset video models trained with and
without ``--set`` overrides, scored on held-out videos.

World videos, the autoencoder and the latent cache are made once (the tiny preset, as
``benchmarks/continuation_keep.py`` makes them). Then for each training seed both arms train
``--steps`` steps from the same start (A: the preset; B: the preset with ``--set``), and each
is scored by ``benchmarks/video_level_loss.py`` (the same held-out steps, times and noise for
every run): the held-out v-loss per target level with the context and with it dropped. Printed
per level: A, B and B − A, the mean over the seeds; with two or more seeds also the spread
between seeds of B − A, which says whether the difference is more than training noise. The tiny
world and model are far from the mini reproduction's, so this tells whether a change can be
learned and used at all, not what it does to the mini results.

    python benchmarks/tiny_ab.py --out /tmp/ab --set model.action_adaln=true --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from continuation_keep import make_tiny_data, run


def train_and_score(out: Path, data: Path, args: argparse.Namespace, sets: list[str]) -> dict:
    """``out``'s run trained with ``sets`` and its per-level scores. A run already in ``out``
    is resumed: nothing to do when it is finished, more steps when ``--steps`` grew, and the
    trainer's error when other settings changed."""
    overrides = [f"video_train.steps={args.steps}", *args.base_set, *sets]
    cmd = ["-m", "millivid", "video", "train", "--method", args.method, "--preset", "tiny"]
    cmd += ["--device", "cpu", "--latents", str(data / "latents"), "--out", str(out)]
    cmd += ["--resume"] if (out / "checkpoint").exists() else []
    run(out.with_suffix(".log"), *cmd, *(x for o in overrides for x in ("--set", o)))
    scores = out.with_suffix(".heldout.json")
    run(
        out.with_suffix(".heldout.log"), "benchmarks/video_level_loss.py", "--ckpt", str(out),
        "--ae", str(data / "ae"), "--frames", "96", "--videos", str(args.videos),
        "--batch", "128", "--json", str(scores),
    )  # fmt: skip
    return json.loads(scores.read_text())["levels"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="work folder")
    parser.add_argument(
        "--set", action="append", required=True, help="arm B's override KEY=VALUE (repeatable)"
    )
    parser.add_argument(
        "--base-set", action="append", default=[], help="an override of both arms (repeatable)"
    )
    parser.add_argument("--method", default="millivid")
    parser.add_argument("--steps", type=int, default=3000, help="training steps of each run")
    parser.add_argument("--seeds", default="0", help="training seeds, e.g. 0,1,2")
    parser.add_argument("--videos", type=int, default=8, help="held-out videos scored")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = make_tiny_data(out / "data")
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        arms = {}
        for arm, sets in (("A", []), ("B", args.set)):
            arms[arm] = train_and_score(
                out / f"{arm}-seed{seed}", data, args, [*sets, f"video_train.seed={seed}"]
            )
        for level, a in arms["A"].items():
            b = arms["B"][level]
            row = rows.setdefault(level, {k: [] for k in ("A", "B", "A_dropped", "B_dropped")})
            row["A"].append(a["loss"])
            row["B"].append(b["loss"])
            row["A_dropped"].append(a["context_dropped"])
            row["B_dropped"].append(b["context_dropped"])
            if "kept" in a:  # discarded targets (mirrored FramePack): the kept ones' own loss
                for arm, scores in (("A", a), ("B", b)):
                    row.setdefault(f"{arm}_kept", []).append(scores["kept"])
                    row.setdefault(f"{arm}_kept_dropped", []).append(scores["kept_context_dropped"])
    print(
        f"{args.method}, tiny preset, {args.steps} steps, seeds {args.seeds}; B: {' '.join(args.set)}"
    )
    result = {"set": args.set, "base_set": args.base_set, "steps": args.steps, "seeds": seeds}
    result["levels"] = {
        level: {**row, "B_minus_A": differences(row)} for level, row in rows.items()
    }
    print_table(rows, "")
    if any("A_kept" in row for row in rows.values()):
        print("\nthe targets kept at sampling alone:")
        print_table(rows, "_kept")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def differences(row: dict[str, list[float]], scores: str = "") -> list[float]:
    """B − A per seed of the held-out v-loss ``scores`` ("": all targets, "_kept": kept ones)."""
    return [b - a for a, b in zip(row[f"A{scores}"], row[f"B{scores}"], strict=True)]


def print_table(rows: dict[str, dict[str, list[float]]], scores: str) -> None:
    """The Markdown table of A, B and B − A per target level (``scores`` as in ``differences``)."""
    mean = statistics.mean
    print(
        "| target level | A | B | B − A | spread of B − A over the seeds | A, B without context |"
    )
    print("|---|---|---|---|---|---|")
    for level, row in rows.items():
        diffs = differences(row, scores)
        spread = f"{min(diffs):+.4f} … {max(diffs):+.4f}" if len(diffs) > 1 else "—"
        a, b = mean(row[f"A{scores}"]), mean(row[f"B{scores}"])
        dropped = f"{mean(row[f'A{scores}_dropped']):.4f}, {mean(row[f'B{scores}_dropped']):.4f}"
        print(f"| {level} | {a:.4f} | {b:.4f} | {mean(diffs):+.4f} | {spread} | {dropped} |")


if __name__ == "__main__":
    main()
