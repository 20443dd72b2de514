"""Clip sampler: deterministic in (seed, index), worker-count independent, exact resume."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.data.clips import NO_ACTION, ClipDataset, clip_loader
from millivid.data.dataset import VideoDataset
from millivid.data.errors import VideoFileError
from millivid.data.videos import (
    VideoRecord,
    load_video,
    load_video_window,
    load_window,
    save_video,
    write_mp4,
)


def numbered_video(t: int, vid: int, size: int = 4) -> VideoRecord:
    """Red = video number, green = frame number: a clip tells where it came from."""
    video = np.zeros((t, size, size, 3), np.uint8)
    video[..., 0] = vid
    video[..., 1] = np.arange(t, dtype=np.uint8)[:, None, None]
    return VideoRecord(
        video=video,
        actions=(np.arange(t) + vid) % 3,
        poses=np.zeros((t, 5), np.float32),
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    lengths = [20, 30, 6, 25]  # video 2 is shorter than the clips asked for below
    for v, t in enumerate(lengths):
        save_video(root / "0000" / f"{v:06d}.npz", numbered_video(t, v))
    return VideoDataset(root)


def check_clip(frames: torch.Tensor, actions: torch.Tensor, length: int) -> None:
    vid = int(frames[0, 0, 0, 0])
    start = int(frames[0, 0, 0, 1])
    assert frames.shape == (length, 4, 4, 3) and frames.dtype == torch.uint8
    assert torch.equal(frames[:, 0, 0, 1], torch.arange(start, start + length, dtype=torch.uint8))
    assert torch.equal(frames[:, 0, 0, 0], torch.full((length,), vid, dtype=torch.uint8))
    assert torch.equal(actions, (torch.arange(start, start + length) + vid) % 3)


def collect(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), a.clone()) for x, a in loader]


@settings(max_examples=20, deadline=None)
@given(k=st.integers(0, 10**9), seed=st.integers(0, 1000), length=st.integers(1, 20))
def test_clip_is_a_true_window_and_deterministic(dataset, k, seed, length):
    clips = ClipDataset(dataset, length, seed)
    frames, actions = clips[k]
    check_clip(frames, actions, length)
    again, _ = ClipDataset(dataset, length, seed)[k]
    assert torch.equal(frames, again)
    if length > 6:
        assert int(frames[0, 0, 0, 0]) != 2  # too short a video is never used


def test_different_seeds_and_indices_differ(dataset):
    a = [ClipDataset(dataset, 5, 0)[k][0] for k in range(8)]
    b = [ClipDataset(dataset, 5, 1)[k][0] for k in range(8)]
    assert len({x[:, 0, 0].numpy().tobytes() for x in a}) > 4
    assert any(not torch.equal(x, y) for x, y in zip(a, b))


def test_loader_same_with_workers_and_resumes_exactly(dataset):
    single = collect(clip_loader(dataset, 8, batch_size=3, seed=5, steps=6))
    workers = collect(clip_loader(dataset, 8, batch_size=3, seed=5, steps=6, num_workers=2))
    resumed = collect(clip_loader(dataset, 8, 3, seed=5, start_step=4, steps=2, num_workers=2))
    assert len(single) == len(workers) == 6 and len(resumed) == 2
    for (x, a), (y, b) in zip(single, workers):
        assert x.shape == (3, 8, 4, 4, 3) and torch.equal(x, y) and torch.equal(a, b)
        for i in range(3):
            check_clip(x[i], a[i], 8)
    for (x, a), (y, b) in zip(single[4:], resumed):
        assert torch.equal(x, y) and torch.equal(a, b)


class LatentSource:
    """A LatentCache-like source: load(i) -> (levels [T, h_l, w_l, C], actions [T])."""

    def __init__(self, t=16):
        self.t = t

    def __len__(self):
        return 3

    def load(self, i):
        frame = torch.arange(self.t, dtype=torch.float32)[:, None, None, None]
        levels = [frame.expand(self.t, 4 // 2**lv, 4 // 2**lv, 2) + 100 * i for lv in range(3)]
        return levels, torch.full((self.t,), i)


def test_latent_source_batches_levels():
    (levels, actions) = next(iter(clip_loader(LatentSource(), 6, batch_size=2, seed=0, steps=1)))
    assert [tuple(x.shape) for x in levels] == [(2, 6, 4, 4, 2), (2, 6, 2, 2, 2), (2, 6, 1, 1, 2)]
    assert actions.shape == (2, 6)
    for b in range(2):  # every level holds the same frames of the same video
        starts = {float(lv[b, 0].flatten()[0]) for lv in levels}
        assert len(starts) == 1
        assert torch.equal(actions[b], torch.full((6,), int(starts.pop()) // 100))


def test_bad_files_are_redrawn_when_skipping(tmp_path):
    for v in range(3):
        save_video(tmp_path / f"{v}.npz", numbered_video(12, v, 4 if v != 1 else 64))
    path = tmp_path / "1.npz"
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("video.npy")
    data = bytearray(path.read_bytes())
    end = info.header_offset + 30 + len(info.filename) + info.compress_size
    half = info.compress_size // 2
    data[end - half : end] = bytes(half)  # smash the frames, keep the array header
    path.write_bytes(bytes(data))
    ds = VideoDataset(tmp_path, skip_bad=True)
    assert len(ds) == 3  # the header scan cannot see it: found only when loading
    with pytest.warns(UserWarning, match=r"1\.npz key 'video'"):
        vids = {int(ClipDataset(ds, 4, 0)[k][0][0, 0, 0, 0]) for k in range(20)}
    assert vids == {0, 2} and [p.name for p, _ in ds.skipped] == ["1.npz"]  # reported once
    with pytest.raises(VideoFileError, match=r"1\.npz key 'video'"):
        VideoDataset(tmp_path).load(1)


def test_mp4_source_has_no_actions_and_short_videos_error(tmp_path):
    write_mp4(tmp_path / "a.mp4", np.full((6, 8, 8, 3), 128, np.uint8))
    frames, actions = ClipDataset(VideoDataset(tmp_path), 4, 0)[0]
    assert frames.shape == (4, 8, 8, 3) and torch.equal(actions, torch.full((4,), NO_ACTION))
    with pytest.raises(ValueError, match="no video of at least 7 frames"):
        ClipDataset(VideoDataset(tmp_path), 7, 0, tries=3)[0]


class WholeVideos:
    """The same videos through the plain ``load`` interface only (no windowed reads)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def load(self, i):
        return self.dataset.load(i)


def test_windowed_reads_match_whole_reads(tmp_path, dataset):
    for path in dataset.paths:  # the same videos, uncompressed (memory-mapped windows)
        save_video(tmp_path / path.name, load_video(path), compress=False)
    stored = VideoDataset(tmp_path)
    for k in range(12):
        a = ClipDataset(stored, 7, 3)[k]
        b = ClipDataset(WholeVideos(dataset), 7, 3)[k]
        c = ClipDataset(dataset, 7, 3)[k]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[0], c[0])


@pytest.mark.parametrize("compress", [True, False])
def test_load_window_and_truncation(tmp_path, compress):
    rec = numbered_video(30, 4, size=16)
    path = tmp_path / "v.npz"
    save_video(path, rec, compress=compress)
    window = load_video_window(path, 5, 12)
    np.testing.assert_array_equal(window.video, rec.video[5:12])
    np.testing.assert_array_equal(window.actions, rec.actions[5:12])
    np.testing.assert_array_equal(load_window(path, "poses", 0, 3), rec.poses[:3])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(VideoFileError, match=r"v\.npz"):
        load_video_window(path, 5, 12)
