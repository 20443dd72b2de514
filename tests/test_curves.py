"""`millivid video curves`: training logs become one figure; bad logs name the file."""

import json

import numpy as np
import pytest

from millivid.cli import main
from millivid.train.curves import read_log, smooth


def _log(run, losses):
    run.mkdir(parents=True)
    lines = [
        json.dumps({"step": 10 * (i + 1), "loss": v, "steps_per_s": 5.0 + i})
        for i, v in enumerate(losses)
    ]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_curves_of_two_runs(tmp_path, capsys):
    _log(tmp_path / "a", [1.0, 0.5, 0.3])
    _log(tmp_path / "b", [1.0, 0.7])
    out = tmp_path / "fig" / "curves.png"
    assert (
        main(
            [
                "video",
                "curves",
                str(tmp_path / "a"),
                str(tmp_path / "b" / "metrics.jsonl"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.stat().st_size > 5_000
    assert not list(out.parent.glob("*.tmp*"))


def test_smooth_is_unbiased_and_averages():
    assert smooth(np.array([2.0]))[0] == 2.0
    s = smooth(np.array([1.0, 0.0, 0.0, 0.0]), alpha=0.5)
    assert s[0] == 1.0 and 0 < s[-1] < s[1] < 1.0


def test_bad_logs_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        read_log(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2"):
        read_log(tmp_path)
