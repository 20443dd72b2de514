"""What going on from a continuation state that keeps only the model costs a training.

A tiny-preset video model (EMA decay 0.99, every step logged) is trained for N steps in one
go, and the same training is stopped at N/2 and continued in fresh run folders: from a state
that keeps all (weights, EMA, optimizer moments) and from one that keeps the weights alone
(``--continuation-keep model``, written from the same stopped run). Printed per run: the mean
training loss over the last 10 % of the steps, and the held-out v-loss of its EMA weights
(``benchmarks/video_level_loss.py`` on test-seed videos, the same steps, times and noise for
every run, averaged over the target levels), and the two states' sizes.

    python benchmarks/continuation_keep.py --out /tmp/keep --steps 3000
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(log: Path, *args: str) -> None:
    """``python *args`` in the checkout, its output into ``log``."""
    with log.open("w") as f:
        subprocess.run([sys.executable, *args], check=True, cwd=ROOT, stdout=f, stderr=f)


def make_tiny_data(data: Path) -> Path:
    """``data``: tiny-preset world videos, autoencoder and latent cache (made once, then kept)."""
    if not (data / "latents").exists():
        millivid = ("-m", "millivid", "reproduce", "--preset", "tiny", "--device", "cpu")
        run(data.with_suffix(".log"), *millivid, "--out", str(data), "--stages", "data,ae,latents")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="work folder")
    parser.add_argument("--steps", type=int, default=3000, help="N: steps of each training")
    parser.add_argument("--method", default="millivid")
    args = parser.parse_args()
    out, n = args.out.resolve(), args.steps
    out.mkdir(parents=True, exist_ok=True)
    data = make_tiny_data(out / "data")
    for name in ("full", "half", "state-all", "state-model", "from-all", "from-model"):
        shutil.rmtree(out / name, ignore_errors=True)
    train = (
        "-m", "millivid", "video", "train", "--method", args.method, "--preset", "tiny",
        "--device", "cpu", "--latents", str(data / "latents"),
        "--set", "video_train.ema_decay=0.99", "--set", "video_train.log_every=1",
    )  # fmt: skip
    steps = lambda k: ("--set", f"video_train.steps={k}")  # noqa: E731
    run(out / "full.log", *train, *steps(n), "--out", str(out / "full"))
    half = (*train, *steps(n // 2), "--out", str(out / "half"))
    run(out / "half.log", *half, "--continuation", str(out / "state-all"))
    model_only = ("--continuation", str(out / "state-model"), "--continuation-keep", "model")
    run(out / "half-model.log", *half, "--resume", *model_only)  # writes the state only
    for keep in ("all", "model"):
        state, new = str(out / f"state-{keep}"), str(out / f"from-{keep}")
        run(out / f"from-{keep}.log", *train, *steps(n), "--out", new, "--resume-from", state)
    print(f"{args.method}, tiny preset, {n} steps (from the state: {n // 2} to {n})")
    print("| run | train loss, last 10 % | held-out v-loss (EMA) |\n|---|---|---|")
    for name in ("full", "from-all", "from-model"):
        log = [json.loads(line) for line in (out / name / "metrics.jsonl").open()]
        train_loss = statistics.mean(r["loss"] for r in log[-max(1, len(log) // 10) :])
        scores = out / f"{name}.heldout.json"
        run(
            out / f"{name}.heldout.log", "benchmarks/video_level_loss.py", "--ckpt",
            str(out / name), "--ae", str(data / "ae"), "--frames", "96", "--videos", "8",
            "--batch", "128", "--json", str(scores),
        )  # fmt: skip
        levels = json.loads(scores.read_text())["levels"].values()
        held_out = statistics.mean(row["loss"] for row in levels)
        print(f"| {name} | {train_loss:.4f} | {held_out:.4f} |")
    for keep in ("all", "model"):
        size = sum(p.stat().st_size for p in (out / f"state-{keep}").iterdir())
        print(f"state-{keep}: {size:,} bytes")


if __name__ == "__main__":
    main()
