"""H.264 mp4 writing and reading through the ffmpeg binary shipped with imageio-ffmpeg, and the
labelled side-by-side video (ground truth | generated) that ``millivid generate`` writes.

mp4 is lossy (yuv420p halves the chroma resolution): use it to look at videos and to read
foreign datasets, never as the training format.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import numpy as np

from millivid.atomic import atomic_path
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


def _even_frame(path, frame: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """``frame`` uint8 [H, W, 3] checked (against the first frame's ``shape``) and padded to even
    sizes by repeating the last row/column, as yuv420p needs."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(
            f"{path}: write_mp4 needs uint8 frames [T, H, W, 3], got frames of "
            f"{frame.dtype} {list(frame.shape)}"
        )
    if shape is not None and frame.shape != shape:
        raise ValueError(
            f"{path}: write_mp4 needs frames of one size, got {list(frame.shape)} after "
            f"{list(shape)}"
        )
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(frame)


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: int = 20,
    quality: float = 8,
) -> None:
    """Write frames uint8 [T, H, W, 3] (or an iterable of uint8 [H, W, 3] frames, encoded as they
    come) to an H.264/yuv420p mp4 at ``path`` atomically.

    yuv420p needs even sizes: an odd height/width is padded by repeating the last row/column.
    ``quality``: 0 (worst) .. 10 (best), imageio-ffmpeg's scale.
    """
    imageio_ffmpeg = _imageio_ffmpeg()

    if isinstance(frames, np.ndarray) and (frames.ndim != 4 or frames.dtype != np.uint8):
        raise ValueError(
            f"{path}: write_mp4 needs uint8 frames [T, H, W, 3], got {frames.dtype} {list(frames.shape)}"
        )
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError(f"{path}: write_mp4 needs at least one frame")
    shape = np.shape(first)
    first = _even_frame(path, first, None)
    height, width = first.shape[:2]
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
        try:
            writer.send(first)
            for frame in it:
                writer.send(_even_frame(path, frame, shape))
        finally:
            writer.close()  # on an error this stops ffmpeg; atomic_path removes the file


def _brief(err: Exception) -> str:
    """An ffmpeg error in one line: its first line and the last line of ffmpeg's log."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(err).__name__
    return f"{lines[0]} ({lines[-1]})"


def iter_mp4(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode an mp4 (any container and codec ffmpeg reads) frame by frame: uint8 [H, W, 3] each.

    Only one frame is held at a time, so long or large videos can be transformed as they stream.
    """
    imageio_ffmpeg = _imageio_ffmpeg()

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    count = 0
    try:
        width, height = next(reader)["size"]
        for buf in reader:
            count += 1
            yield np.frombuffer(buf, np.uint8).reshape(height, width, 3)
    except (RuntimeError, OSError, StopIteration, ValueError, KeyError) as err:
        raise VideoFileError(path, "video", f"cannot decode mp4: {_brief(err)}") from None
    finally:
        reader.close()  # stops ffmpeg when the caller stops early
    if not count:
        raise VideoFileError(path, "video", "mp4 has no frames")


def mp4_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an mp4's frames, from its header (no frame is decoded)."""
    imageio_ffmpeg = _imageio_ffmpeg()

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        width, height = next(reader)["size"]
    except (RuntimeError, OSError, StopIteration, ValueError, KeyError) as err:
        raise VideoFileError(path, "video", f"cannot decode mp4: {_brief(err)}") from None
    finally:
        reader.close()
    return int(height), int(width)


def read_mp4(path: str | os.PathLike) -> np.ndarray:
    """Decode an mp4 (any codec ffmpeg reads) to frames uint8 [T, H, W, 3]."""
    return np.stack(list(iter_mp4(path)))


# A 5 x 9 bitmap font (rows top to bottom, "#" = ink; the last two rows hold descenders), so
# captions need no font files. Upper case is drawn as lower case, unknown characters as "?".
_GLYPHS = {
    " ": "",
    "a": "..... ..... .###. ....# .#### #...# .####",
    "b": "#.... #.... ####. #...# #...# #...# ####.",
    "c": "..... ..... .#### #.... #.... #.... .####",
    "d": "....# ....# .#### #...# #...# #...# .####",
    "e": "..... ..... .###. #...# ##### #.... .###.",
    "f": "..##. .#... .#... ####. .#... .#... .#...",
    "g": "..... ..... .#### #...# #...# #...# .#### ....# .###.",
    "h": "#.... #.... ####. #...# #...# #...# #...#",
    "i": "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
    "j": "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..",
    "k": "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
    "l": ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "m": "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#",
    "n": "..... ..... ####. #...# #...# #...# #...#",
    "o": "..... ..... .###. #...# #...# #...# .###.",
    "p": "..... ..... ####. #...# #...# #...# ####. #.... #....",
    "q": "..... ..... .#### #...# #...# #...# .#### ....# ....#",
    "r": "..... ..... #.##. ##..# #.... #.... #....",
    "s": "..... ..... .#### #.... .###. ....# ####.",
    "t": ".#... .#... ####. .#... .#... .#..# ..##.",
    "u": "..... ..... #...# #...# #...# #..## .##.#",
    "v": "..... ..... #...# #...# #...# .#.#. ..#..",
    "w": "..... ..... #...# #...# #.#.# #.#.# .#.#.",
    "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#",
    "y": "..... ..... #...# #...# #...# #...# .#### ....# .###.",
    "z": "..... ..... ##### ...#. ..#.. .#... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    "/": "....# ....# ...#. ..#.. .#... #.... #....",
    ",": "..... ..... ..... ..... ..... .##.. ..#.. .#...",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "_": "..... ..... ..... ..... ..... ..... #####",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
}
GLYPH_W, GLYPH_H = 5, 9  # pixels of one character at scale 1, one column of space after it


@cache
def _glyph(char: str) -> np.ndarray:
    """bool [GLYPH_H, GLYPH_W] ink of one character."""
    rows = _GLYPHS.get(char.lower(), _GLYPHS["?"]).split()
    ink = np.zeros((GLYPH_H, GLYPH_W), dtype=bool)
    for r, row in enumerate(rows):
        ink[r] = [c == "#" for c in row]
    return ink


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """bool [GLYPH_H * scale, (6 * len(text) - 1) * scale]: ``text`` in the bitmap font."""
    if not text:
        return np.zeros((GLYPH_H * scale, 0), dtype=bool)
    gap = np.zeros((GLYPH_H, 1), dtype=bool)
    row = np.concatenate([part for c in text for part in (_glyph(c), gap)][:-1], axis=1)
    return row.repeat(scale, axis=0).repeat(scale, axis=1)


def draw_text(
    image: np.ndarray, text: str, y: int, x: int, rgb: tuple[int, int, int], scale: int = 1
) -> None:
    """Draw ``text`` into image uint8 [H, W, 3] with its top-left corner at (y, x), in place;
    what falls outside the image is cut off."""
    ink = text_mask(text, scale)
    h = max(0, min(ink.shape[0], image.shape[0] - y))
    w = max(0, min(ink.shape[1], image.shape[1] - x))
    image[y : y + h, x : x + w][ink[:h, :w]] = rgb


def text_width(text: str, scale: int = 1) -> int:
    return max(0, 6 * len(text) - 1) * scale


PANEL_PX = 256  # a labelled video's panels are upscaled to about this width
CONTEXT_RGB = (80, 150, 255)  # blue: the frame is ground-truth context
GENERATED_RGB = (255, 140, 0)  # orange: the frame is generated
_BACKGROUND, _FRAME_RGB, _TEXT_RGB = 24, (90, 90, 90), (235, 235, 235)


def comparison_frames(
    video: np.ndarray,
    context: int,
    name: str,
    truth: np.ndarray | None = None,
    panel: int = PANEL_PX,
) -> Iterator[np.ndarray]:
    """The frames uint8 [H', W', 3] of a labelled video to look at, one at a time.

    ``truth`` (the ground truth, uint8 [T, H, W, 3], when there is one) beside ``video`` (the
    ``context`` given frames, then the generated ones, uint8 [T, H, W, 3]), each upscaled by
    nearest neighbour to about ``panel`` px and captioned "ground truth" | ``name``. The border of
    ``video``'s panel and the line under the panels mark context frames (blue) and generated
    frames (orange) and count them: "frame 300 / 512, generated 44" (1-based).
    """
    video = np.asarray(video)
    panels = [("ground truth", truth), (name, video)] if truth is not None else [(name, video)]
    if truth is not None and truth.shape != video.shape:
        raise ValueError(
            f"the ground truth {list(truth.shape)} and the video {list(video.shape)} beside it "
            "need the same shape"
        )
    t, h, w, _ = video.shape
    s = max(1, panel // max(h, w))  # upscale factor
    g = 2 if w * s >= 128 else 1  # text scale
    b, strip = 2 * g, 15 * g  # border, caption/status strip height
    ph, pw = h * s + 2 * b, w * s + 2 * b  # one panel with its border
    base = np.full((strip + ph + strip, len(panels) * (pw + b) + b, 3), _BACKGROUND, np.uint8)
    lefts = [b + i * (pw + b) for i in range(len(panels))]
    for (caption, _), x in zip(panels, lefts):
        base[strip : strip + ph, x : x + pw] = _FRAME_RGB
        cx = x + max(0, (pw - text_width(caption, g)) // 2)
        draw_text(base, caption, 3 * g, cx, _TEXT_RGB, g)
    for i in range(t):
        image = base.copy()
        given = i < context
        marker = CONTEXT_RGB if given else GENERATED_RGB
        image[strip : strip + ph, lefts[-1] : lefts[-1] + pw] = marker
        for (_, frames), x in zip(panels, lefts):
            big = frames[i].repeat(s, axis=0).repeat(s, axis=1)
            image[strip + b : strip + b + h * s, x + b : x + b + w * s] = big
        status = f"frame {i + 1} / {t}, " + ("context" if given else f"generated {i + 1 - context}")
        sg = g if text_width(status, g) <= image.shape[1] - 2 * b else 1
        draw_text(image, status, strip + ph + 3 * g, b, marker, sg)
        yield image
