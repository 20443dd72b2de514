"""``import_videos``: turn a folder of videos into a millivid dataset (``millivid data import``).

Sources (``fmt``), every file with the format's suffix under ``src``, recursively, in sorted
order of relative path:

* ``mp4``: video files that ffmpeg decodes (``VIDEO_SUFFIXES``), without actions.
* ``npz``: ``.npz`` files with ``video`` uint8 [T, H, W, 3], optionally ``actions`` int [T] in
  millivid ids and ``poses`` float32 [T, 5] (kept); other keys are left out.
* ``teco``: TECO npz files, ``dfot``: TECO/DFoT mp4 files with their actions beside them; their
  action ids are mapped to millivid's (``millivid.data.formats``).
* ``auto``: video files -> ``dfot`` when the first has an actions file beside it, else ``mp4``;
  ``.npz`` files -> ``teco`` or ``npz`` by ``millivid.data.dataset.detect_format``.

The output mirrors the source: ``src/a/b.mp4`` becomes ``out/a/b.npz`` (``video`` and
``actions``, plus ``poses`` when the source has them), next to ``out/dataset.json``.

Frames: without ``size`` they are kept as they are, which needs square frames of one size in
every video (checked on the file headers before anything is written; the error lists the files
of each size). With ``size``, each frame's centred square (side = the shorter side; the rest of
the longer side is cut off) is resized to ``size`` x ``size`` (bilinear, antialiased), so any
aspect ratio and mix of sizes is accepted.

Actions: ``actions_file`` (JSON: ``{"<path relative to src>": [a_0, ..., a_{T-1}], ...}`` with
one entry per video) replaces every video's actions; otherwise a source's own actions are used
and videos without any get ``NULL_ACTION`` on every frame. Ids: 0 forward, 1 left, 2 right
(``millivid.world.agent``), 3 = ``NULL_ACTION``, which the video model embeds as "no action"
(its id of padding tokens, ``millivid.model.tokens.NO_ACTION``).

Resume: files are written atomically and a finished output is never redone, so rerunning the
same command after an interruption converts only what is missing (also new source files);
``dataset.json`` records the settings and a rerun with other settings is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from millivid.atomic import is_temporary, remove_stale_temporaries, write_json_atomic
from millivid.data.dataset import DATASET_JSON, detect_format, read_dataset_json
from millivid.data.errors import VideoFileError
from millivid.data.formats import action_sidecar, read_sidecar_actions, teco_actions
from millivid.data.frames import mixed_sizes, video_layout
from millivid.data.mp4 import iter_mp4, mp4_size
from millivid.data.videos import (
    VideoRecord,
    load_arrays,
    load_video,
    read_header,
    save_video,
    validate_arrays,
)

IMPORT_FORMATS = ("auto", "mp4", "npz", "teco", "dfot")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
NULL_ACTION = 3  # = millivid.model.tokens.NO_ACTION (0..2: millivid.world.agent's actions)
_CHUNK = 64  # frames resized at once (bounds the float copy of a large video)


def source_files(src: Path, fmt: str) -> list[Path]:
    """The videos of ``src`` for ``fmt`` (not ``auto``), recursively, sorted by relative path."""
    suffixes = (".npz",) if fmt in ("npz", "teco") else VIDEO_SUFFIXES
    found = (
        p
        for p in src.rglob("*")
        if p.suffix.lower() in suffixes and p.is_file() and not is_temporary(p)
    )
    return sorted(found, key=lambda p: p.relative_to(src).as_posix())


def detect_import_format(src: Path) -> str:
    """``mp4``/``dfot`` for a folder of video files, else ``npz``/``teco`` (module docstring)."""
    videos = source_files(src, "mp4")
    if videos:
        return "dfot" if action_sidecar(videos[0]) is not None else "mp4"
    if not source_files(src, "npz"):
        raise FileNotFoundError(
            f"{src}: no videos found (looked for {', '.join(VIDEO_SUFFIXES)} and .npz, recursively)"
        )
    return "teco" if detect_format(src) == "teco-npz" else "npz"


def square_frames(frames: np.ndarray, size: int | None) -> np.ndarray:
    """uint8 [T, H, W, 3] -> [T, size, size, 3]: the centred square of side min(H, W), resized
    bilinearly with antialiasing; ``size`` None returns ``frames`` unchanged."""
    if size is None:
        return frames
    _, h, w, _ = frames.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = frames[:, top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(square)
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for s in range(0, len(frames), _CHUNK):
        x = torch.from_numpy(np.ascontiguousarray(square[s : s + _CHUNK])).permute(0, 3, 1, 2)
        y = F.interpolate(x.float(), (size, size), mode="bilinear", antialias=True)
        out[s : s + _CHUNK] = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def frame_size(path: Path, fmt: str) -> tuple[int, int]:
    """(H, W) of a source video's frames, from its header."""
    if fmt in ("mp4", "dfot"):
        return mp4_size(path)
    shape, _ = video_layout(path)
    return int(shape[1]), int(shape[2])


def _decoded(path: Path, size: int | None) -> np.ndarray:
    """An mp4's frames, resized chunk by chunk as they are decoded (never all at full size)."""
    chunks, pending = [], []
    for frame in iter_mp4(path):
        pending.append(frame)
        if len(pending) == _CHUNK:
            chunks.append(square_frames(np.stack(pending), size))
            pending = []
    if pending:
        chunks.append(square_frames(np.stack(pending), size))
    return np.concatenate(chunks)


def read_source(path: Path, fmt: str, size: int | None, own_actions: bool = True) -> VideoRecord:
    """One source video, resized; its actions (millivid ids) when it has them and
    ``own_actions``, else None."""
    if fmt in ("mp4", "dfot"):
        side = action_sidecar(path) if fmt == "dfot" and own_actions else None
        if fmt == "dfot" and own_actions and side is None:
            raise VideoFileError(path, "actions", "no sibling .npz/.npy with the actions")
        video = _decoded(path, size)
        if side is None:
            return VideoRecord(video=video)
        actions = teco_actions(read_sidecar_actions(side), len(video), side)
        return VideoRecord(video=video, actions=actions)
    if fmt == "teco":
        arrays = load_arrays(path, ["video", "actions"] if own_actions else ["video"])
        video = validate_arrays({"video": arrays["video"]}, path)["video"]
        actions = teco_actions(arrays["actions"], len(video), path) if own_actions else None
        return VideoRecord(video=square_frames(video, size), actions=actions)
    header = read_header(path)
    keys = [k for k in ("actions", "poses") if k in header and (k != "actions" or own_actions)]
    record = load_video(path, keys=keys)
    record.video = square_frames(record.video, size)
    return record


def read_actions_file(path: Path, src: Path, sources: list[Path]) -> dict[str, np.ndarray]:
    """The JSON actions file: ``{path relative to src: [int, ...]}``, one entry per video."""
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable actions file: {err}") from None
    if not isinstance(table, dict):
        raise ValueError(f"{path}: expected a JSON object {{video path: [actions]}}")
    names = [p.relative_to(src).as_posix() for p in sources]
    missing, unknown = sorted(set(names) - set(table)), sorted(set(table) - set(names))
    if missing or unknown:
        raise ValueError(
            f"{path}: needs one entry per video of {src}, keyed by its relative path; "
            f"missing: {missing[:5]}{' ...' if len(missing) > 5 else ''}; "
            f"no such video: {unknown[:5]}{' ...' if len(unknown) > 5 else ''}"
        )
    out = {}
    for name in names:
        actions = np.asarray(table[name])
        if actions.ndim != 1 or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"{path}: entry {name!r}: expected a list of integers")
        out[name] = actions.astype(np.int64)
    return out


def _checked_actions(actions: np.ndarray, frames: int, where: str) -> np.ndarray:
    if len(actions) != frames:
        raise ValueError(f"{where}: {len(actions)} actions for {frames} frames")
    if actions.size and (actions.min() < 0 or actions.max() > NULL_ACTION):
        raise ValueError(
            f"{where}: action ids must be 0..{NULL_ACTION} (0 forward, 1 left, 2 right, "
            f"{NULL_ACTION} none), got {actions.min()}..{actions.max()}"
        )
    return actions


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _in_threads(fn: Callable, items: list, workers: int, bar: tqdm) -> list:
    """``[fn(x) for x in items]`` on ``workers`` threads (ffmpeg, zlib and torch release the
    GIL), ticking ``bar``; the first error cancels the items not yet started."""
    pool = ThreadPoolExecutor(workers)
    try:
        results = []
        for result in pool.map(fn, items):
            results.append(result)
            bar.update(1)
        return results
    finally:
        pool.shutdown(cancel_futures=True)
        bar.close()


def _common_size(paths: list[Path], fmt: str, workers: int, progress: bool) -> int | None:
    """The one square frame size of ``paths`` (None for no paths); an error listing the files
    of each size otherwise."""
    bar = tqdm(total=len(paths), desc="sizes", unit="video", disable=not progress)
    shapes = _in_threads(lambda p: frame_size(p, fmt), paths, workers, bar)
    sizes: dict[tuple[int, int], list[Path]] = {}
    for path, shape in zip(paths, shapes, strict=True):
        sizes.setdefault(shape, []).append(path)
    if len(sizes) > 1:
        raise ValueError(
            f"videos of different frame sizes: {mixed_sizes(sizes)}; pass --size S to "
            "centre-crop and resize every video to S x S"
        )
    if not sizes:
        return None
    ((h, w),) = sizes
    if h != w:
        raise ValueError(
            f"frames are {h}x{w}, not square ({mixed_sizes(sizes)}); pass --size S to "
            "centre-crop and resize them to S x S"
        )
    return h


def _check_resume(out: Path, spec: dict) -> dict | None:
    """The existing dataset.json if its settings equal ``spec``'s; an error naming the first
    setting that differs."""
    if not (out / DATASET_JSON).is_file():
        return None
    old = read_dataset_json(out)
    for key in ("source", "source_format", "resize", "actions", "actions_sha256", "compress"):
        if old.get(key) != spec[key]:
            raise ValueError(
                f"{out / DATASET_JSON}: key {key!r} differs from this run "
                f"({old.get(key)!r} != {spec[key]!r}); use a new --out or the same settings"
            )
    return old


def _outputs(src: Path, out: Path, fmt: str) -> tuple[list[Path], list[str]]:
    """(source videos, their output files relative to ``out``), checked."""
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such folder")
    if out == src or src in out.parents or out in src.parents:
        raise ValueError(f"--out {out} and SRC {src} must not contain one another")
    sources = source_files(src, fmt)
    if not sources:
        raise FileNotFoundError(f"{src}: no {fmt} videos found (searched recursively)")
    files = [p.relative_to(src).with_suffix(".npz").as_posix() for p in sources]
    clashes = sorted(f for f, n in Counter(files).items() if n > 1)
    if clashes:
        raise ValueError(f"{src}: videos differing only in suffix would share {clashes[:5]}")
    return sources, files


def _actions(record: VideoRecord, table: dict | None, name: str, where: str) -> np.ndarray:
    """A converted video's actions: from ``table``, else its own, else ``NULL_ACTION``."""
    if table is not None:
        return _checked_actions(table[name], record.frames, where)
    if record.actions is None:
        return np.full(record.frames, NULL_ACTION, np.int64)
    return _checked_actions(record.actions, record.frames, where)


def import_videos(
    src: str | os.PathLike,
    out: str | os.PathLike,
    fmt: str = "auto",
    size: int | None = None,
    actions_file: str | os.PathLike | None = None,
    compress: bool = True,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Convert the videos of ``src`` into a millivid dataset at ``out`` (module docstring);
    resumable. Returns the final dataset.json."""
    src, out = Path(src).resolve(), Path(out).resolve()
    if fmt not in IMPORT_FORMATS:
        raise ValueError(f"unknown import format {fmt!r}; known: {', '.join(IMPORT_FORMATS)}")
    if size is not None and size < 1:
        raise ValueError(f"--size must be >= 1, got {size}")
    fmt = detect_import_format(src) if fmt == "auto" and src.is_dir() else fmt
    sources, files = _outputs(src, out, fmt)
    table = read_actions_file(Path(actions_file), src, sources) if actions_file else None
    workers = workers or min(8, os.cpu_count() or 1)
    spec = {
        "format": "millivid",
        "version": 1,
        "source": str(src),
        "source_format": fmt,
        "resize": size,
        "actions": str(Path(actions_file).resolve()) if actions_file else "source",
        "actions_sha256": _sha256(Path(actions_file)) if actions_file else None,
        "null_action": NULL_ACTION,
        "compress": compress,
    }
    old = _check_resume(out, spec)
    todo = [i for i, f in enumerate(files) if not (out / f).is_file()]
    found = size or _common_size([sources[i] for i in todo], fmt, workers, progress)
    known = old.get("size") if old else None
    if known is not None and found is not None and found != known:
        raise ValueError(
            f"the videos not yet converted have {found}x{found} frames, the finished ones in "
            f"{out} {known}x{known}; pass --size to a new --out"
        )
    meta = {**spec, "size": found or known, "videos": len(files), "files": files}
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    write_json_atomic(out / DATASET_JSON, {**meta, "complete": False})

    def convert(i: int) -> None:
        record = read_source(sources[i], fmt, size, own_actions=table is None)
        name = sources[i].relative_to(src).as_posix()
        where = f"{actions_file} entry {name!r}" if table is not None else str(sources[i])
        record.actions = _actions(record, table, name, where)
        side = meta["size"]
        if record.video.shape[1:3] != (side, side):  # the header said otherwise
            h, w = record.video.shape[1:3]
            raise VideoFileError(sources[i], "video", f"decoded {h}x{w} frames, not {side}x{side}")
        save_video(out / files[i], record, compress)

    done = len(files) - len(todo)
    bar = tqdm(
        total=len(files), initial=done, desc="data import", unit="video", disable=not progress
    )
    _in_threads(convert, todo, workers, bar)
    meta["complete"] = True
    write_json_atomic(out / DATASET_JSON, meta)
    return meta
