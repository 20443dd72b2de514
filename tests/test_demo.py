import numpy as np

from millivid.cli import main


def test_demo_writes_video_npz_and_plot(tmp_path, capsys):
    assert main(["demo", "--preset", "tiny", "--frames", "16", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    npz = tmp_path / "world_seed0.npz"
    assert str(npz) in printed
    assert (tmp_path / "world_seed0.mp4").stat().st_size > 0
    assert (tmp_path / "world_seed0_trajectory.png").stat().st_size > 0
    with np.load(npz) as f:
        assert f["video"].shape == (16, 32, 32, 3) and f["video"].dtype == np.uint8
        assert f["actions"].shape == (16,)
