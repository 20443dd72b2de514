"""Foreign layouts: TECO npz, TECO/DFoT mp4 + actions, plain mp4 folders; detection; skip-bad."""

from __future__ import annotations

import numpy as np
import pytest

from millivid.data.dataset import VideoDataset, check_dataset, detect_format
from millivid.data.errors import VideoFileError
from millivid.data.formats import teco_actions
from millivid.data.videos import VideoRecord, save_video, write_mp4


def frames(t: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """Smooth frames (survive H.264) with a per-video brightness."""
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    base = 0.2 + 0.1 * seed
    out = [np.stack([xx, yy, np.full_like(xx, base + 0.02 * i)], -1) for i in range(t)]
    return (np.stack(out) * 255).astype(np.uint8)


def collected_actions(t: int, seed: int) -> np.ndarray:
    """Actions as collect-minecraft stores them: [0 (reset), then 1..3], int32, length t."""
    rng = np.random.default_rng(seed)
    return np.concatenate([[0], rng.integers(1, 4, t - 1)]).astype(np.int32)


def test_teco_npz_layout(tmp_path):
    # TECO: <split>/<shard>/<name>.npz with 'video' and 'actions'
    for shard in range(2):
        for i in range(2):
            path = tmp_path / "train" / str(shard) / f"{i:06d}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(
                path, video=frames(9, seed=i), actions=collected_actions(9, 10 * shard + i)
            )
    assert detect_format(tmp_path) == "teco-npz"
    ds = VideoDataset(tmp_path)
    assert len(ds) == 4 and ds.paths[0].parts[-2:] == ("0", "000000.npz")
    rec = ds.load(3)
    raw = collected_actions(9, 11)
    assert rec.video.shape == (9, 16, 16, 3) and rec.actions.dtype == np.int64
    np.testing.assert_array_equal(rec.actions, np.array([0, 0, 1, 2])[raw])
    raw_ds = VideoDataset(tmp_path, format="teco", actions="raw")
    np.testing.assert_array_equal(raw_ds.load(3).actions, raw)


@pytest.mark.parametrize("sidecar", ["npz", "npy"])
def test_teco_mp4_layout(tmp_path, sidecar):
    # TECO's Minecraft release / collect-minecraft mp4 mode: <name>.mp4 + actions beside it
    t = 10
    for i in range(3):
        write_mp4(tmp_path / f"{i:06d}.mp4", frames(t, seed=i))
        acts = collected_actions(t, i)
        if sidecar == "npz":
            np.savez(tmp_path / f"{i:06d}.npz", actions=acts)
        else:
            np.save(tmp_path / f"{i:06d}.npy", acts)
    assert detect_format(tmp_path) == "teco-mp4"
    ds = VideoDataset(tmp_path)
    assert len(ds) == 3
    rec = ds.load(1)
    assert rec.video.shape == (t, 16, 16, 3)
    np.testing.assert_array_equal(rec.actions, np.array([0, 0, 1, 2])[collected_actions(t, 1)])
    # the per-video brightness came back: the right file was decoded
    assert abs(rec.video[..., 2].mean() - (0.3 + 0.02 * 4.5) * 255) < 6


def test_dfot_layout_one_more_action_than_frames(tmp_path):
    # DFoT reads minecraft/{training,validation}/**/<name>.npz actions[1:] with <name>.mp4
    t = 8
    root = tmp_path / "minecraft" / "validation" / "a"
    root.mkdir(parents=True)
    acts = collected_actions(t + 1, 5)
    write_mp4(root / "0.mp4", frames(t))
    np.savez(root / "0.npz", actions=acts)
    ds = VideoDataset(tmp_path / "minecraft", format="dfot")
    rec = ds.load(0)
    assert rec.video.shape[0] == t and rec.actions.shape == (t,)
    np.testing.assert_array_equal(rec.actions, np.array([0, 0, 1, 2])[acts[1:]])


def test_teco_actions_one_hot_and_errors(tmp_path):
    acts = np.array([0, 1, 2, 3, 1])
    one_hot = np.eye(4, dtype=np.int64)[acts]
    np.testing.assert_array_equal(teco_actions(one_hot, 5, tmp_path), [0, 0, 1, 2, 0])
    with pytest.raises(VideoFileError, match="key 'actions': expected 5 or 6 actions, got 3"):
        teco_actions(acts[:3], 5, tmp_path / "x.npz")
    with pytest.raises(VideoFileError, match="actions are 0..3, got 0..7"):
        teco_actions(np.array([0, 7]), 2, tmp_path / "x.npz")
    np.testing.assert_array_equal(teco_actions(np.array([0, 7]), 2, tmp_path, "raw"), [0, 7])


def test_plain_mp4_folder_has_no_actions(tmp_path):
    write_mp4(tmp_path / "clip.mp4", frames(5))
    assert detect_format(tmp_path) == "mp4"
    rec = VideoDataset(tmp_path).load(0)
    assert rec.video.shape == (5, 16, 16, 3) and rec.actions is None


def test_own_layout_detected_without_dataset_json(tmp_path):
    t = 4
    rec = VideoRecord(
        video=frames(t), actions=np.zeros(t, np.int64), poses=np.zeros((t, 5), np.float32)
    )
    save_video(tmp_path / "0000" / "000000.npz", rec)
    assert detect_format(tmp_path) == "millivid"
    np.testing.assert_array_equal(VideoDataset(tmp_path).load(0).actions, rec.actions)


def test_skip_bad_reports_instead_of_crashing(tmp_path):
    t = 4
    for i in range(4):
        np.savez(tmp_path / f"{i}.npz", video=frames(t, seed=i), actions=collected_actions(t, i))
    (tmp_path / "1.npz").write_bytes(b"garbage")  # unreadable zip: caught by the header scan
    np.savez(tmp_path / "2.npz", video=frames(t), actions=np.zeros(t + 3, np.int32))  # late
    with pytest.raises(VideoFileError, match=r"1\.npz"):
        VideoDataset(tmp_path, format="teco-npz").load(1)
    with pytest.warns(UserWarning, match=r"1\.npz"):
        ds = VideoDataset(tmp_path, format="teco-npz", skip_bad=True)
    assert [p.name for p in ds.paths] == ["0.npz", "2.npz", "3.npz"]
    with pytest.warns(UserWarning, match=r"2\.npz key 'actions'"):
        assert ds.try_load(1) is None
    assert ds.try_load(2) is not None
    assert [p.name for p, _ in ds.skipped] == ["1.npz", "2.npz"]
    checked, bad = check_dataset(tmp_path, format="teco-npz", progress=False)
    assert checked == 4 and sorted(p.name for p, _ in bad) == ["1.npz", "2.npz"]


def test_unknown_format_and_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset format 'avi'"):
        VideoDataset(tmp_path, format="avi")
    with pytest.raises(FileNotFoundError, match="no .npz or .mp4 videos"):
        VideoDataset(tmp_path)


def test_missing_imageio_ffmpeg_says_how_to_install_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import now raises ImportError
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ModuleNotFoundError, match="pip install imageio-ffmpeg"):
        write_mp4(tmp_path / "x.mp4", frames)
    assert not (tmp_path / "x.mp4").exists()


def test_check_reports_non_finite_poses_and_mixed_frame_sizes(tmp_path):
    t = 4
    poses = np.zeros((t, 5), np.float32)
    for i, size in enumerate((16, 16, 16, 8)):
        save_video(tmp_path / f"{i}.npz", VideoRecord(frames(t, size, i), np.zeros(t, np.int64)))
    bad_poses = poses.copy()
    bad_poses[2, 3] = np.nan
    np.savez(tmp_path / "4.npz", video=frames(t), actions=np.zeros(t, np.int64), poses=bad_poses)
    checked, bad = check_dataset(tmp_path, format="millivid", progress=False)
    reasons = {p.name: r for p, r in bad}
    assert checked == 5 and sorted(reasons) == ["3.npz", "4.npz"]
    assert "frames 8x8, most of the dataset 16x16" in reasons["3.npz"]
    assert (
        "'poses'" in reasons["4.npz"] and "non-finite values (first at frame 2)" in reasons["4.npz"]
    )
