"""``millivid data import``: folders of mp4 / npz / TECO / DFoT videos become datasets that the
loaders, the autoencoder trainer, the encoder and the video task accept."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from millivid.cli import main
from millivid.data.dataset import VideoDataset, check_dataset, read_dataset_json
from millivid.data.errors import VideoFileError
from millivid.data.import_videos import NULL_ACTION, import_videos, square_frames
from millivid.data.videos import VideoRecord, load_video, save_video, write_mp4


def frames(t: int, h: int = 32, w: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth frames (they survive H.264) with a per-video brightness."""
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = [np.stack([xx, yy, np.full_like(xx, 0.2 + 0.1 * seed + 0.02 * i)], -1) for i in range(t)]
    return (np.stack(out) * 255).astype(np.uint8)


def mp4_folder(root, shapes):
    """One mp4 per (frames, height, width), the last one in a sub-folder."""
    for i, (t, h, w) in enumerate(shapes):
        sub = "clips/" if i == len(shapes) - 1 else ""
        write_mp4(root / f"{sub}v{i}.mp4", frames(t, h, w, seed=i))


def test_null_action_is_the_video_models_no_action_id():
    from millivid.model.tokens import NO_ACTION
    from millivid.world.agent import FORWARD, LEFT, RIGHT

    assert NULL_ACTION == NO_ACTION and NULL_ACTION not in (FORWARD, LEFT, RIGHT)


def test_mp4_folder_trains_the_autoencoder_and_encodes(tmp_path, monkeypatch):
    from millivid.autoencoder.model import HierarchicalAutoencoder
    from millivid.data.latent_cache import LatentCache
    from millivid.jobs.autoencoder import encode_dataset, train_autoencoder
    from millivid.jobs.video_task import VideoTask
    from millivid.presets import load_preset

    src, out = tmp_path / "src", tmp_path / "data"
    mp4_folder(src, [(24, 32, 48), (24, 40, 40), (20, 64, 32)])  # three aspect ratios
    meta = import_videos(src, out, size=32, progress=False)
    assert meta["complete"] and meta["videos"] == 3 and meta["source_format"] == "mp4"
    assert meta["files"] == ["clips/v2.npz", "v0.npz", "v1.npz"]  # mirrors src, sorted
    dataset = VideoDataset(out)
    assert dataset.format == "millivid" and len(dataset) == 3
    record = dataset.load(0)
    assert record.video.shape == (20, 32, 32, 3) and record.actions.dtype == np.int64
    assert (record.actions == NULL_ACTION).all()
    assert check_dataset(out, progress=False) == (3, [])

    cfg = load_preset("tiny", ["ae_train.steps=2", "ae_train.batch_size=4"])
    run = tmp_path / "ae"
    assert (train_autoencoder(cfg, out, run, device="cpu") / "model.safetensors").is_file()
    calls, encode = [], HierarchicalAutoencoder.encode

    def recording(self, frames):  # encoding keeps no autograd graph (memory at 256² frames)
        calls.append(torch.is_grad_enabled())
        return encode(self, frames)

    monkeypatch.setattr(HierarchicalAutoencoder, "encode", recording)
    cache = LatentCache(encode_dataset(run, out, tmp_path / "latents"))
    assert calls and not any(calls)
    levels, actions = cache.load(0)
    assert levels[0].shape == (20, 4, 4, 4) and (actions == NULL_ACTION).all()
    task = VideoTask(cfg, "millivid", cache)  # videos without actions train the video model
    loss, _ = task.loss(task.build_model(), task.batch(0, torch.Generator().manual_seed(0)), "cpu")
    assert torch.isfinite(loss)


def test_npz_and_teco_folders_keep_their_actions(tmp_path):
    src = tmp_path / "npz"
    actions = np.array([0, 1, 2, 0, 3, 1], np.int64)
    poses = np.arange(30, dtype=np.float32).reshape(6, 5)
    record = VideoRecord(video=frames(6, 48, 64), actions=actions, poses=poses)
    save_video(src / "a.npz", record)
    save_video(src / "b.npz", VideoRecord(video=frames(4, 40, 40, seed=1)))  # no actions
    meta = import_videos(src, tmp_path / "out", fmt="npz", size=16, progress=False)
    assert meta["size"] == 16
    a = load_video(tmp_path / "out" / "a.npz")
    np.testing.assert_array_equal(a.actions, actions)
    np.testing.assert_array_equal(a.poses, poses)  # poses do not depend on the frame size
    assert a.video.shape == (6, 16, 16, 3)
    b = load_video(tmp_path / "out" / "b.npz")
    assert b.poses is None and (b.actions == NULL_ACTION).all()

    teco = tmp_path / "teco" / "train" / "0"  # TECO ids: 0 reset, 1 forward, 2 left, 3 right
    teco.mkdir(parents=True)
    np.savez(teco / "000000.npz", video=frames(4), actions=np.array([0, 1, 2, 3], np.int32))
    meta = import_videos(tmp_path / "teco", tmp_path / "teco-out", progress=False)
    assert meta["source_format"] == "teco" and meta["size"] == 32  # detected; kept as is
    got = load_video(tmp_path / "teco-out" / "train" / "0" / "000000.npz")
    np.testing.assert_array_equal(got.actions, [0, 0, 1, 2])
    np.testing.assert_array_equal(got.video, frames(4))


def test_dfot_mp4_with_actions_beside_it(tmp_path):
    src = tmp_path / "minecraft" / "training"
    write_mp4(src / "0" / "x.mp4", frames(5))
    np.savez(src / "0" / "x.npz", actions=np.array([0, 1, 1, 2, 3, 3], np.int32))  # T + 1
    import_videos(tmp_path / "minecraft", tmp_path / "out", progress=False)
    got = load_video(tmp_path / "out" / "training" / "0" / "x.npz")
    assert read_dataset_json(tmp_path / "out")["source_format"] == "dfot"
    np.testing.assert_array_equal(got.actions, [0, 0, 1, 2, 2])


def test_actions_file_replaces_the_actions(tmp_path):
    src = tmp_path / "src"
    mp4_folder(src, [(3, 16, 16), (2, 16, 16)])
    table = tmp_path / "actions.json"
    table.write_text(json.dumps({"v0.mp4": [0, 1, 2], "clips/v1.mp4": [3, 0]}))
    import_videos(src, tmp_path / "out", actions_file=table, progress=False)
    np.testing.assert_array_equal(load_video(tmp_path / "out" / "v0.npz").actions, [0, 1, 2])
    np.testing.assert_array_equal(load_video(tmp_path / "out/clips/v1.npz").actions, [3, 0])

    table.write_text(json.dumps({"v0.mp4": [0, 1, 2]}))
    with pytest.raises(ValueError, match=r"missing: \['clips/v1.mp4'\]"):
        import_videos(src, tmp_path / "o2", actions_file=table, progress=False)
    table.write_text(json.dumps({"v0.mp4": [0, 1, 7], "clips/v1.mp4": [0, 0]}))
    with pytest.raises(ValueError, match=r"'v0.mp4'.*action ids must be 0..3"):
        import_videos(src, tmp_path / "o3", actions_file=table, progress=False, workers=1)
    table.write_text(json.dumps({"v0.mp4": [0, 1], "clips/v1.mp4": [0, 0]}))
    with pytest.raises(ValueError, match=r"'v0.mp4': 2 actions for 3 frames"):
        import_videos(src, tmp_path / "o4", actions_file=table, progress=False, workers=1)


def test_errors_name_the_files(tmp_path):
    src = tmp_path / "src"
    mp4_folder(src, [(2, 16, 16), (2, 24, 24), (2, 16, 16)])
    with pytest.raises(ValueError, match=r"16x16: 2 videos .*24x24: 1 video \(.*v1\.mp4\)"):
        import_videos(src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "dataset.json").exists()  # nothing written

    wide = tmp_path / "wide"
    write_mp4(wide / "w.mp4", frames(2, 16, 24))
    with pytest.raises(ValueError, match=r"16x24, not square.*w\.mp4.*--size"):
        import_videos(wide, tmp_path / "out", progress=False)

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no videos found"):
        import_videos(tmp_path / "empty", tmp_path / "out", progress=False)

    (src / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoFileError, match=r"broken\.mp4 key 'video': cannot decode"):
        import_videos(src, tmp_path / "out", size=16, progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.npz").write_bytes(b"garbage")
    with pytest.raises(VideoFileError, match=r"x\.npz: not a readable \.npz"):
        import_videos(bad, tmp_path / "out-npz", fmt="npz", progress=False)

    with pytest.raises(ValueError, match="must not contain one another"):
        import_videos(src, src / "out", size=16, progress=False)


def test_rerun_converts_only_what_is_missing_and_refuses_other_settings(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    mp4_folder(src, [(3, 16, 16), (3, 16, 16), (3, 16, 16)])
    import_videos(src, out, progress=False)
    kept = (out / "v0.npz").stat().st_mtime_ns
    (out / "v1.npz").unlink()  # as if interrupted before it
    write_mp4(src / "v9.mp4", frames(3, 16, 16))  # a video added since
    meta = import_videos(src, out, progress=False)
    assert (out / "v0.npz").stat().st_mtime_ns == kept
    assert (out / "v1.npz").is_file() and meta["files"][-1] == "v9.npz" and meta["videos"] == 4
    with pytest.raises(ValueError, match="key 'resize' differs"):
        import_videos(src, out, size=8, progress=False)


def test_square_frames_keeps_the_centre():
    video = np.zeros((1, 4, 8, 3), np.uint8)
    video[:, :, 2:6] = 200  # the centre 4x4 square
    np.testing.assert_array_equal(square_frames(video, 4), np.full((1, 4, 4, 3), 200, np.uint8))
    small = square_frames(video, 2)
    assert small.shape == (1, 2, 2, 3) and (small == 200).all()
    assert square_frames(video, None) is video


def test_cli_import(tmp_path, capsys):
    mp4_folder(tmp_path / "src", [(2, 20, 30)])
    out = tmp_path / "out"
    assert main(["data", "import", str(tmp_path / "src"), "--out", str(out), "--size", "8"]) == 0
    assert "1 videos (mp4) at 8x8" in capsys.readouterr().out
    assert load_video(out / "clips" / "v0.npz").video.shape == (2, 8, 8, 3)


def test_npz_without_actions_is_detected_as_npz(tmp_path):
    save_video(tmp_path / "src" / "a.npz", VideoRecord(video=frames(3, 8, 8)))
    meta = import_videos(tmp_path / "src", tmp_path / "out", progress=False)
    assert meta["source_format"] == "npz"
    assert (load_video(tmp_path / "out" / "a.npz").actions == NULL_ACTION).all()
