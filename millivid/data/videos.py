"""One video = one ``.npz`` file: frames plus (optionally) actions, poses, labels and depth.

Keys (shapes per video; T frames of H x W pixels):

* ``video``   uint8   [T, H, W, 3]  RGB frames (required)
* ``actions`` int64   [T]           0 forward, 1 left, 2 right; action t led from frame t-1 to t
* ``poses``   float32 [T, 5]        x, y, z, yaw°, pitch° of the camera
* ``labels``  uint8   [T, H, W]     block kind per pixel (``millivid.world.BLOCK_KINDS``, 0 = sky)
* ``depth``   float16 [T, H, W]     distance along the ray in blocks

Files are ordinary ``np.load``-able zips, written atomically and byte-deterministically (fixed
zip timestamps), so re-rendering the same seed gives the same bytes. Any problem reading a file
raises ``VideoFileError`` naming the file and the key.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, fields
from itertools import islice
from pathlib import Path

import numpy as np

from millivid.atomic import atomic_path
from millivid.data.errors import VideoFileError
from millivid.data.mp4 import read_mp4, write_mp4

__all__ = [
    "KEYS",
    "VideoFileError",
    "VideoRecord",
    "array_layout",
    "load_arrays",
    "load_video",
    "load_window",
    "open_array",
    "read_ahead",
    "read_header",
    "read_mp4",
    "save_video",
    "write_mp4",
]

KEYS = ("video", "actions", "poses", "labels", "depth")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed so identical arrays give identical bytes


@dataclass
class VideoRecord:
    """One video as numpy arrays (shapes in the module docstring); optional keys may be None."""

    video: np.ndarray
    actions: np.ndarray | None = None
    poses: np.ndarray | None = None
    labels: np.ndarray | None = None
    depth: np.ndarray | None = None

    @property
    def frames(self) -> int:
        """Number of frames T."""
        return int(self.video.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """The keys that are present, in ``KEYS`` order."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


def validate_arrays(arrays: dict[str, np.ndarray], path: str | os.PathLike = "<memory>") -> dict:
    """Check dtypes and shapes of a video's arrays; return them with actions cast to int64.

    Raises ``VideoFileError`` naming ``path`` and the offending key.
    """
    if "video" not in arrays:
        raise VideoFileError(path, "video", "missing key (every video file needs 'video')")
    out = dict(arrays)
    video = arrays["video"]
    _expect(path, "video", video, np.dtype(np.uint8), ndim=4)
    t, h, w, c = video.shape
    if c != 3:
        raise VideoFileError(path, "video", f"expected shape [T, H, W, 3], got {list(video.shape)}")
    if t == 0:
        raise VideoFileError(
            path, "video", f"no frames (shape {list(video.shape)}): re-create it or leave it out"
        )
    if "actions" in arrays:
        a = arrays["actions"]
        if not np.issubdtype(a.dtype, np.integer):
            raise VideoFileError(path, "actions", f"expected an integer dtype, got {a.dtype}")
        _shape(path, "actions", a, (t,))
        out["actions"] = a.astype(np.int64, copy=False)
    if "poses" in arrays:
        _expect(path, "poses", arrays["poses"], np.dtype(np.float32), ndim=2)
        _shape(path, "poses", arrays["poses"], (t, 5))
        if not np.isfinite(arrays["poses"]).all():
            bad = int(np.flatnonzero(~np.isfinite(arrays["poses"]).all(axis=1))[0])
            raise VideoFileError(path, "poses", f"non-finite values (first at frame {bad})")
    for key, dtype in (("labels", np.uint8), ("depth", np.float16)):
        if key in arrays:
            _expect(path, key, arrays[key], np.dtype(dtype), ndim=3)
            _shape(path, key, arrays[key], (t, h, w))
    return out


def _expect(path, key: str, a: np.ndarray, dtype: np.dtype, ndim: int) -> None:
    if a.dtype != dtype:
        raise VideoFileError(path, key, f"expected dtype {dtype}, got {a.dtype}")
    if a.ndim != ndim:
        raise VideoFileError(path, key, f"expected {ndim} dimensions, got shape {list(a.shape)}")


def _shape(path, key: str, a: np.ndarray, shape: tuple[int, ...]) -> None:
    if tuple(a.shape) != shape:
        raise VideoFileError(path, key, f"expected shape {list(shape)}, got {list(a.shape)}")


def save_video(path: str | os.PathLike, record: VideoRecord, compress: bool = True) -> None:
    """Validate ``record`` and write it to ``path`` (.npz) atomically and deterministically."""
    path = Path(path)
    arrays = validate_arrays(record.arrays(), path)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
            info.compress_type = method
            info._compresslevel = 1  # fast deflate: ~2.3x faster than level 6, ~10% larger
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)


_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError)
PICKLED = (
    "holds Python objects (a pickled array), which are never loaded because loading them can "
    "run code: save plain numeric arrays"
)


def read_error(err: Exception) -> str:
    """What is wrong with an array that numpy could not read (a pickled array named as such)."""
    if "Object arrays cannot be loaded" in str(err):
        return PICKLED
    return f"truncated or corrupt data: {err}"


def read_npy(path: str | os.PathLike, key: str) -> np.ndarray:
    """One ``.npy`` file (pickled arrays refused); errors name the file and what ``key`` it
    was read as."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except _READ_ERRORS as err:
        raise VideoFileError(path, key, read_error(err)) from None


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise VideoFileError(
            path, None, f"not a readable .npz (truncated or corrupt: {err}): delete or re-create it"
        ) from None


def _members(path: Path, zf: zipfile.ZipFile) -> dict[str, str]:
    return {n[:-4]: n for n in zf.namelist() if n.endswith(".npy")}


def read_header(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in an .npz without decompressing the data."""
    path = Path(path)
    out = {}
    with _open_zip(path) as zf:
        for key, name in _members(path, zf).items():
            try:
                with zf.open(name) as f:
                    shape, _, dtype = _npy_header(f)
            except _READ_ERRORS as err:
                raise VideoFileError(path, key, f"unreadable array header: {err}") from None
            out[key] = (tuple(shape), np.dtype(dtype))
    return out


def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy stream ``f``, leaving ``f`` at the data."""
    major, _ = np.lib.format.read_magic(f)
    if major == 1:
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def array_layout(path: str | os.PathLike, key: str) -> tuple[tuple[int, ...], np.dtype, int | None]:
    """(shape, dtype, data offset) of array ``key`` of an .npz from its headers alone. The
    offset is the byte where the array's C-ordered data starts in the file, for arrays stored
    uncompressed (``save_video(compress=False)``); None when the data must be decompressed."""
    path = Path(path)
    with _open_zip(path) as zf:
        members = _members(path, zf)
        if key not in members:
            raise VideoFileError(path, key, "missing key")
        info = zf.getinfo(members[key])
        try:
            if info.compress_type != zipfile.ZIP_STORED:
                with zf.open(info) as f:
                    shape, _, dtype = _npy_header(f)
                return tuple(shape), np.dtype(dtype), None
            with open(path, "rb") as f:
                f.seek(info.header_offset + 26)
                name_len, extra_len = struct.unpack("<HH", f.read(4))
                f.seek(info.header_offset + 30 + name_len + extra_len)
                shape, fortran, dtype = _npy_header(f)
                offset = f.tell()
        except (*_READ_ERRORS, struct.error) as err:
            raise VideoFileError(path, key, f"unreadable array header: {err}") from None
    end = offset + int(np.prod(shape)) * dtype.itemsize
    if end > path.stat().st_size:
        raise VideoFileError(path, key, f"truncated data: {list(shape)} needs byte {end}")
    return tuple(shape), np.dtype(dtype), None if fortran or not shape else offset


def open_array(path: str | os.PathLike, key: str) -> np.ndarray:
    """Array ``key`` of an .npz. Uncompressed files (``save_video(compress=False)``) are
    memory-mapped read-only, so only the rows indexed are ever read; compressed ones are read
    whole."""
    shape, dtype, offset = array_layout(path, key)
    if offset is None:
        return load_arrays(path, [key])[key]
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def load_window(path: str | os.PathLike, key: str, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` of one array; of an uncompressed file only those are read."""
    return np.array(open_array(path, key)[start:stop])


def load_arrays(path: str | os.PathLike, keys: tuple[str, ...] | list[str] | None = None) -> dict:
    """Read ``keys`` (default: all) of an .npz as numpy arrays, naming the file/key on errors."""
    path = Path(path)
    with _open_zip(path) as zf:
        members = _members(path, zf)
        wanted = list(members) if keys is None else list(keys)
        out = {}
        for key in wanted:
            if key not in members:
                have = ", ".join(sorted(members)) or "none"
                raise VideoFileError(path, key, f"missing key (file has: {have})")
            try:
                with zf.open(members[key]) as f:
                    out[key] = np.lib.format.read_array(f, allow_pickle=False)
            except _READ_ERRORS as err:
                raise VideoFileError(path, key, read_error(err)) from None
    return out


def load_video(
    path: str | os.PathLike, keys: tuple[str, ...] | list[str] | None = None
) -> VideoRecord:
    """Load one video .npz written by ``save_video`` (or any npz with the same keys).

    ``keys``: which keys to read besides ``video`` (always read); None reads every key present.
    Errors (missing/truncated/corrupt/wrong dtype or shape) raise ``VideoFileError`` naming the
    file and the key.
    """
    path = Path(path)
    if keys is not None:
        unknown = [k for k in keys if k not in KEYS]
        if unknown:
            raise ValueError(f"unknown video key(s) {unknown}; known: {', '.join(KEYS)}")
        keys = ["video", *[k for k in keys if k != "video"]]
    arrays = load_arrays(path, keys)
    arrays = {k: v for k, v in arrays.items() if k in KEYS}
    return VideoRecord(**validate_arrays(arrays, path))


def load_video_window(
    path: str | os.PathLike, start: int, stop: int, keys: tuple[str, ...] | list[str] | None = None
) -> VideoRecord:
    """Frames ``[start, stop)`` of a video file, with ``keys`` (default: all present) sliced too."""
    path = Path(path)
    present = [k for k in read_header(path) if k in KEYS]
    wanted = ["video", *[k for k in (present if keys is None else keys) if k != "video"]]
    arrays = {k: load_window(path, k, start, stop) for k in wanted}
    return VideoRecord(**validate_arrays(arrays, path))


def read_ahead(pool: Executor, fn: Callable, items: Iterable, ahead: int) -> Iterator:
    """``fn(x)`` for each of ``items``, in order, each started on ``pool`` up to ``ahead`` items
    before it is consumed: video files are read (zlib frees the GIL) while the caller computes.
    An error of ``fn`` is raised where its item is consumed."""
    items = iter(items)
    queue = deque(pool.submit(fn, x) for x in islice(items, max(1, ahead)))
    while queue:
        done = queue.popleft()
        queue.extend(pool.submit(fn, x) for x in islice(items, 1))
        yield done.result()
