"""``millivid world render``: wiring to make_videos, the data writers and the trajectory plot.

The writers (millivid.data.videos) belong to the data stage; here the names the world CLI calls
them by are replaced by a recorder, so this test checks what it hands them, not how they write.
"""

from dataclasses import dataclass

import numpy as np
import pytest

from millivid.cli import main
from millivid.cli import world as cli_world


@dataclass
class _Record:
    video: np.ndarray
    actions: np.ndarray | None = None
    poses: np.ndarray | None = None
    labels: np.ndarray | None = None
    depth: np.ndarray | None = None


@pytest.fixture
def writers(monkeypatch):
    calls = {}

    def save_video(path, record):
        calls["npz"] = (path, record)
        path.write_bytes(b"npz")

    def write_mp4(path, frames, fps=20):
        calls["mp4"] = (path, frames)
        path.write_bytes(b"mp4")

    for name, value in (
        ("VideoRecord", _Record),
        ("save_video", save_video),
        ("write_mp4", write_mp4),
    ):
        monkeypatch.setattr(cli_world, name, value)
    return calls


def test_render_writes_three_files_and_prints_them(tmp_path, writers, capsys):
    out = tmp_path / "sub" / "vid"
    code = main(
        [
            "world",
            "render",
            "--preset",
            "tiny",
            "--seed",
            "3",
            "--frames",
            "40",
            "--size",
            "16",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for suffix in (".npz", ".mp4", "_trajectory.png"):
        path = tmp_path / "sub" / f"vid{suffix}"
        assert path.exists() and str(path) in printed
    assert (tmp_path / "sub" / "vid_trajectory.png").read_bytes()[:4] == b"\x89PNG"
    record = writers["npz"][1]
    assert record.video.shape == (40, 16, 16, 3) and record.video.dtype == np.uint8
    assert record.actions.shape == (40,) and record.poses.shape == (40, 5)
    assert record.labels.shape == (40, 16, 16) and record.depth.dtype == np.float16
    assert np.array_equal(writers["mp4"][1], record.video)


def test_render_test_flag_changes_actions(tmp_path, writers):
    args = ["world", "render", "--preset", "tiny", "--seed", "3", "--frames", "64", "--size", "8"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    train = writers["npz"][1].actions
    assert (
        main(
            [*args, "--set", "world.test_context_frames=16", "--test", "--out", str(tmp_path / "b")]
        )
        == 0
    )
    assert not np.array_equal(train, writers["npz"][1].actions)


def test_unknown_world_key_is_an_error(tmp_path, writers, capsys):
    code = main(
        [
            "world",
            "render",
            "--preset",
            "tiny",
            "--set",
            "world.nope=1",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 1
    assert "nope" in capsys.readouterr().err
