"""Fixtures shared by the evaluation tests: a tiny run folder and its evaluation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from millivid.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """RUN/gt + RUN/rollouts/{shifted,random} from the tiny world; 40 frames, context 8."""
    from millivid.presets import PRESETS
    from millivid.world import make_videos

    run = tmp_path_factory.mktemp("run")
    v = make_videos([1, 2], replace(PRESETS["tiny"].world, frames=40))
    rng = np.random.default_rng(0)
    for d in ("gt", "rollouts/shifted", "rollouts/random", "plans"):
        (run / d).mkdir(parents=True)
    for i in range(2):
        vid, lab = v.video[i].numpy(), v.labels[i].numpy()
        np.savez(
            run / "gt" / f"v{i}.npz",
            video=vid,
            labels=lab,
            actions=v.actions[i].numpy(),
            poses=v.poses[i].numpy(),
        )
        np.savez(run / "rollouts/shifted" / f"v{i}.npz", video=np.roll(vid, 2, axis=2))
        np.savez(
            run / "rollouts/random" / f"v{i}.npz",
            video=rng.integers(0, 256, vid.shape, dtype=np.uint8),
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 1))
    fig.text(0.1, 0.5, "plan of shifted")
    fig.savefig(run / "plans" / "shifted.png")
    plt.close(fig)
    return run


@pytest.fixture(scope="module")
def evaluated_run(run_dir):
    """``run_dir`` evaluated into RUN/eval (``millivid evaluate``, start 8, horizons 8,16,64)."""
    assert (
        main(
            [
                "evaluate",
                "--pred-dir",
                str(run_dir / "rollouts"),
                "--gt-dir",
                str(run_dir / "gt"),
                "--start",
                "8",
                "--horizons",
                "8,16,64",
                "--out",
                str(run_dir / "eval"),
                "--no-progress",
            ]
        )
        == 0
    )
    return run_dir
