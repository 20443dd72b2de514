"""The autoencoder trains from lazily read frames: bounded memory, the same batches as an
in-memory frame bank, in process or in DataLoader workers."""

from __future__ import annotations

import pickle
import weakref

import numpy as np
import pytest
import torch

import millivid.data.frames as frames_module
from millivid.autoencoder.task import AutoencoderTask
from millivid.data.frames import DatasetFrames
from millivid.data.videos import VideoRecord, load_video, save_video
from millivid.jobs.autoencoder import frame_bank, train_autoencoder
from millivid.presets import load_preset

SIZE = 32


def write_videos(root, lengths, size=SIZE, compress=(True, False)):
    """Random videos of the given lengths, compressed or not in turn by ``compress``; paths."""
    rng = np.random.default_rng(0)
    paths = []
    for i, t in enumerate(lengths):
        video = rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8)
        path = root / f"{i // 4:04d}" / f"{i:06d}.npz"
        record = VideoRecord(video=video, actions=np.zeros(t, np.int64))
        save_video(path, record, compress[i % len(compress)])
        paths.append(path)
    return paths


def bank(paths, stride=1):
    """The old in-memory frame bank: every frame of every video in one tensor."""
    return torch.cat([torch.from_numpy(load_video(p).video[::stride]) for p in paths])


@pytest.mark.parametrize("stride", [1, 3])
def test_batches_equal_the_in_memory_bank(tmp_path, stride):
    paths = write_videos(tmp_path, [7, 1, 12, 5, 9, 4])
    with pytest.warns(UserWarning, match="frame cache"):  # videos are dropped and read again
        lazy = DatasetFrames(paths, stride, cache_bytes=12 * SIZE * SIZE * 3, progress=False)
    full = bank(paths, stride)
    assert lazy.shape == full.shape and len(lazy) == len(full)
    cfg = load_preset("tiny").ae
    old, new = AutoencoderTask(cfg, full, 16), AutoencoderTask(cfg, lazy, 16)
    for step in range(30):
        a = old.batch(step, torch.Generator().manual_seed(step))
        b = new.batch(step, torch.Generator().manual_seed(step))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    grid = torch.tensor([[0, 3], [2, 1]])
    assert torch.equal(lazy[5], full[5]) and torch.equal(lazy[grid], full[grid])
    with pytest.raises(IndexError):
        lazy[torch.tensor([len(full)])]


def test_never_more_than_the_cache_plus_one_video_in_memory(tmp_path, monkeypatch):
    paths = write_videos(tmp_path, [10] * 40, compress=(True,))
    live: list[weakref.ref] = []
    peak = loads = 0

    def counting_load(path, keys):
        nonlocal peak, loads
        array = np.array(load_video(path).video)  # a fresh array we can watch die
        live.append(weakref.ref(array))
        loads += 1
        peak = max(peak, sum(r() is not None for r in live))
        return {"video": array}

    monkeypatch.setattr(frames_module, "load_arrays", counting_load)
    video_bytes = 10 * SIZE * SIZE * 3
    with pytest.warns(UserWarning, match="more than the frame cache.*--store"):
        lazy = DatasetFrames(paths, cache_bytes=3 * video_bytes, progress=False)
    task = AutoencoderTask(load_preset("tiny").ae, lazy, 8)
    for step in range(50):
        task.batch(step, torch.Generator().manual_seed(step))
    assert len(lazy._cache) <= 3
    assert peak <= 4  # the cache, plus the video being read
    assert loads > len(paths)  # videos were dropped and read again: memory stayed bounded


def test_uncompressed_videos_are_mapped_not_cached(tmp_path):
    paths = write_videos(tmp_path, [5, 6, 7], compress=(False,))
    lazy = DatasetFrames(paths, cache_bytes=0, progress=False)  # no warning: nothing to cache
    assert torch.equal(lazy[torch.arange(18)], bank(paths)) and len(lazy._cache) == 0


def test_a_worker_copy_starts_with_an_empty_cache(tmp_path):
    lazy = DatasetFrames(write_videos(tmp_path, [4, 4], compress=(True,)), progress=False)
    lazy[torch.arange(8)]
    assert len(lazy._cache) == 2
    copy = pickle.loads(pickle.dumps(lazy))
    assert len(copy._cache) == 0 and torch.equal(copy[torch.arange(8)], lazy[torch.arange(8)])


def test_errors_name_the_dataset_and_files(tmp_path):
    write_videos(tmp_path / "mixed", [3, 3])
    odd = write_videos(tmp_path / "other", [2], size=16)[0]
    (tmp_path / "mixed" / "9999").mkdir()
    odd.rename(tmp_path / "mixed" / "9999" / "x.npz")
    with pytest.raises(ValueError, match=r"32x32: 2 videos.*16x16: 1 video \(.*x\.npz\)"):
        frame_bank(tmp_path / "mixed")
    (tmp_path / "mp4s").mkdir()
    with pytest.raises(FileNotFoundError, match="millivid data import"):
        frame_bank(tmp_path / "mp4s")
    cfg = load_preset("tiny", ["ae.image_size=64", "ae_train.steps=1"])
    write_videos(tmp_path / "small", [2])
    with pytest.raises(ValueError, match="frames are 32x32 but ae.image_size = 64"):
        train_autoencoder(cfg, tmp_path / "small", tmp_path / "run", device="cpu")


def test_training_in_a_worker_matches_the_in_memory_bank(tmp_path):
    from millivid.train import load_checkpoint, train

    data = tmp_path / "data"
    write_videos(data, [6, 3, 8])
    common = ["ae_train.steps=1", "ae_train.batch_size=4"]
    cfg = load_preset("tiny", [*common, "ae_train.num_workers=1"])
    train_autoencoder(cfg, data, tmp_path / "lazy", device="cpu")
    old = load_preset("tiny", common)
    task = AutoencoderTask(old.ae, bank(sorted(data.rglob("*.npz"))), 4)
    train(task, old.ae_train, tmp_path / "bank", config={"stage": "autoencoder"}, device="cpu")
    lazy, _ = load_checkpoint(tmp_path / "lazy")
    full, _ = load_checkpoint(tmp_path / "bank")
    assert lazy.keys() == full.keys()
    for key in lazy:
        if key not in ("latent_mean", "latent_std"):  # set by calibration afterwards
            assert torch.equal(lazy[key], full[key]), key
