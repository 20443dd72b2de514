"""H.264 mp4 writing and reading through the ffmpeg binary shipped with imageio-ffmpeg.

mp4 is lossy (yuv420p halves the chroma resolution): use it to look at videos and to read
foreign datasets, never as the training format.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from millivid.data.atomic import atomic_path
from millivid.data.errors import VideoFileError


def _imageio_ffmpeg():
    """The imageio_ffmpeg module, or an error saying how to get it (a millivid dependency that a
    checkout run with ``PYTHONPATH=.`` on a machine with its own torch may lack)."""
    try:
        import imageio_ffmpeg
    except ImportError as err:
        raise ModuleNotFoundError(
            "mp4 files need the imageio-ffmpeg package (a millivid dependency): "
            "pip install imageio-ffmpeg, or run bash scripts/setup.sh"
        ) from err
    return imageio_ffmpeg


def write_mp4(
    path: str | os.PathLike, frames: np.ndarray, fps: int = 20, quality: float = 8
) -> None:
    """Write frames uint8 [T, H, W, 3] to an H.264/yuv420p mp4 at ``path`` atomically.

    yuv420p needs even sizes: an odd height/width is padded by repeating the last row/column.
    ``quality``: 0 (worst) .. 10 (best), imageio-ffmpeg's scale.
    """
    imageio_ffmpeg = _imageio_ffmpeg()

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"{path}: write_mp4 needs uint8 frames [T, H, W, 3], got {frames.dtype} {list(frames.shape)}"
        )
    if frames.shape[0] == 0:
        raise ValueError(f"{path}: write_mp4 needs at least one frame")
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    height, width = frames.shape[1:3]
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (width, height),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            quality=quality,
            macro_block_size=1,
            output_params=["-movflags", "+faststart"],
        )
        writer.send(None)  # start ffmpeg
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()


def read_mp4(path: str | os.PathLike) -> np.ndarray:
    """Decode an mp4 (any codec ffmpeg reads) to frames uint8 [T, H, W, 3]."""
    imageio_ffmpeg = _imageio_ffmpeg()

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
        width, height = meta["size"]
        frames = [np.frombuffer(buf, np.uint8).reshape(height, width, 3) for buf in reader]
    except (RuntimeError, OSError, StopIteration, ValueError, KeyError) as err:
        raise VideoFileError(path, "video", f"cannot decode mp4: {err}") from None
    if not frames:
        raise VideoFileError(path, "video", "mp4 has no frames")
    return np.stack(frames)
