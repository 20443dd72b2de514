"""Video files: npz round trip, deterministic atomic writes, clear errors, mp4 round trip."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.atomic import is_temporary, remove_stale_temporaries
from millivid.data.dataset import list_videos
from millivid.data.videos import (
    VideoFileError,
    VideoRecord,
    load_video,
    read_header,
    read_mp4,
    save_video,
    write_mp4,
)


def make_record(t=6, h=8, w=10, seed=0, side=True) -> VideoRecord:
    rng = np.random.default_rng(seed)
    return VideoRecord(
        video=rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8),
        actions=rng.integers(0, 3, t).astype(np.int64),
        poses=rng.standard_normal((t, 5)).astype(np.float32),
        labels=rng.integers(0, 12, (t, h, w), dtype=np.uint8) if side else None,
        depth=rng.random((t, h, w)).astype(np.float16) if side else None,
    )


def assert_same(a: VideoRecord, b: VideoRecord) -> None:
    assert a.arrays().keys() == b.arrays().keys()
    for key, value in a.arrays().items():
        other = getattr(b, key)
        assert other.dtype == value.dtype, key
        np.testing.assert_array_equal(other, value, err_msg=key)


@settings(max_examples=15, deadline=None)
@given(
    t=st.integers(1, 5),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    seed=st.integers(0, 2**16),
    side=st.booleans(),
    compress=st.booleans(),
)
def test_round_trip_any_shape(tmp_path_factory, t, h, w, seed, side, compress):
    path = tmp_path_factory.mktemp("rt") / "v.npz"
    record = make_record(t, h, w, seed, side)
    save_video(path, record, compress=compress)
    assert_same(record, load_video(path))
    # an ordinary numpy npz, readable without millivid
    with np.load(path) as npz:
        np.testing.assert_array_equal(npz["video"], record.video)


def test_load_selected_keys_and_header(tmp_path):
    path = tmp_path / "v.npz"
    save_video(path, make_record())
    loaded = load_video(path, keys=["poses"])
    assert loaded.poses is not None and loaded.labels is None and loaded.actions is None
    header = read_header(path)
    assert header["video"] == ((6, 8, 10, 3), np.dtype(np.uint8))
    assert header["depth"] == ((6, 8, 10), np.dtype(np.float16))


def test_same_arrays_give_same_bytes(tmp_path):
    save_video(tmp_path / "a.npz", make_record())
    save_video(tmp_path / "b.npz", make_record())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_failed_write_keeps_previous_file_and_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "v.npz"
    old = make_record(seed=1)
    save_video(path, old)
    before = path.read_bytes()
    real = np.lib.format.write_array

    def failing(f, array, *args, **kwargs):
        if array.dtype == np.float32:  # the poses: video and actions already written
            f.write(b"partial")
            raise OSError("disk full")
        return real(f, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing)
    with pytest.raises(OSError, match="disk full"):
        save_video(path, make_record(seed=2))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.npz"]


def test_killed_writer_never_leaves_a_half_file_under_the_final_name(tmp_path):
    """A real crash (os._exit mid-write): the old file stays valid, the temp is not a video."""
    path = tmp_path / "shard" / "v.npz"
    old = make_record(seed=3)
    save_video(path, old)
    script = textwrap.dedent(
        f"""
        import os, numpy as np
        from millivid.data.videos import VideoRecord, save_video
        real = np.lib.format.write_array
        def dying(f, array, *a, **k):
            if array.dtype == np.float32:
                f.write(b"x" * 1000)
                os._exit(9)
            return real(f, array, *a, **k)
        np.lib.format.write_array = dying
        t = 40
        save_video({str(path)!r}, VideoRecord(
            video=np.zeros((t, 16, 16, 3), np.uint8), actions=np.zeros(t, np.int64),
            poses=np.zeros((t, 5), np.float32)))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode == 9, result.stderr.decode()
    assert_same(old, load_video(path))
    leftovers = [p for p in path.parent.iterdir() if p != path]
    assert leftovers and all(is_temporary(p) for p in leftovers)
    assert list_videos(tmp_path) == [path]
    assert remove_stale_temporaries(tmp_path) == len(leftovers)
    assert list(path.parent.iterdir()) == [path]


def test_truncated_file_names_file(tmp_path):
    path = tmp_path / "v.npz"
    save_video(path, make_record())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoFileError, match=r"v\.npz.*truncated or corrupt"):
        load_video(path)


def test_corrupt_member_names_file_and_key(tmp_path):
    path = tmp_path / "v.npz"
    save_video(path, make_record(t=30, h=16, w=16))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("labels.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + 40
    data[start : start + 64] = bytes(64)  # smash compressed bytes of 'labels'
    path.write_bytes(bytes(data))
    with pytest.raises(VideoFileError) as err:
        load_video(path)
    assert err.value.key == "labels" and err.value.path == path
    assert "v.npz key 'labels'" in str(err.value)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("video", np.zeros((6, 8, 10, 3), np.float32), "expected dtype uint8, got float32"),
        ("video", np.zeros((6, 8, 10), np.uint8), "expected 4 dimensions"),
        ("actions", np.zeros(6, np.float32), "expected an integer dtype"),
        ("actions", np.zeros(5, np.int64), r"expected shape \[6\], got \[5\]"),
        ("poses", np.zeros((6, 5), np.float64), "expected dtype float32, got float64"),
        ("poses", np.zeros((6, 4), np.float32), r"expected shape \[6, 5\]"),
        ("labels", np.zeros((6, 8, 10), np.int32), "expected dtype uint8"),
        ("depth", np.zeros((6, 8, 9), np.float16), r"expected shape \[6, 8, 10\]"),
    ],
)
def test_wrong_dtype_or_shape_names_file_and_key(tmp_path, key, value, message):
    path = tmp_path / "bad.npz"
    arrays = make_record().arrays()
    arrays[key] = value
    np.savez(path, **arrays)
    with pytest.raises(VideoFileError, match=message) as err:
        load_video(path)
    assert err.value.key == key and "bad.npz" in str(err.value)
    with pytest.raises(VideoFileError):  # the writer refuses the same arrays
        save_video(tmp_path / "out.npz", VideoRecord(**arrays))
    assert not (tmp_path / "out.npz").exists()


def test_missing_keys_name_file_and_key(tmp_path):
    path = tmp_path / "nov.npz"
    np.savez(path, actions=np.zeros(3, np.int64))
    with pytest.raises(VideoFileError, match=r"nov\.npz key 'video': missing key"):
        load_video(path)
    save_video(tmp_path / "v.npz", make_record(side=False))
    with pytest.raises(VideoFileError, match="key 'depth': missing key"):
        load_video(tmp_path / "v.npz", keys=["depth"])
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_video(tmp_path / "absent.npz")


@pytest.mark.parametrize("size", [(64, 64), (32, 48), (17, 23)])
def test_mp4_round_trip_is_close(tmp_path, size):
    h, w = size
    t = 12
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    frames = np.stack(
        [np.stack([xx, yy, 0.5 + 0.4 * np.sin(3 * (xx + yy) + i / 2)], -1) * 255 for i in range(t)]
    ).astype(np.uint8)  # smooth gradients: what H.264 keeps well
    path = tmp_path / "v.mp4"
    write_mp4(path, frames)
    back = read_mp4(path)
    assert back.shape == (t, h + h % 2, w + w % 2, 3)  # odd sizes padded to even
    err = np.abs(back[:, :h, :w].astype(float) - frames.astype(float))
    assert err.mean() < 6, err.mean()
    flipped = np.abs(back[:, :h, :w].astype(float) - frames[:, ::-1].astype(float))
    assert flipped.mean() > 4 * err.mean()  # the content itself came back, not just the size
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_mp4_bad_input(tmp_path):
    with pytest.raises(ValueError, match="uint8 frames"):
        write_mp4(tmp_path / "x.mp4", np.zeros((2, 8, 8), np.uint8))
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoFileError, match="junk.mp4"):
        read_mp4(tmp_path / "junk.mp4")
