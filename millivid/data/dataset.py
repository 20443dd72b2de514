"""A dataset on disk: a folder of video files (sharded sub-folders fine) plus ``dataset.json``.

``VideoDataset(root)`` reads millivid's own layout and the foreign ones of
``millivid.data.formats`` (TECO/DFoT npz or mp4, plain mp4), detected from the folder or named
with ``format=``. ``check_dataset(root)`` fully reads and validates every file.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from tqdm import tqdm

from millivid.atomic import is_temporary
from millivid.data import formats
from millivid.data.errors import VideoFileError
from millivid.data.videos import (
    KEYS,
    VideoRecord,
    load_video,
    load_video_window,
    read_header,
)

DATASET_JSON = "dataset.json"
FORMATS = ("millivid", "teco-npz", "teco-mp4", "mp4")
FORMAT_ALIASES = {"dfot": "teco-mp4", "teco": "teco-npz", "auto": "auto"}


def _files(root: Path, suffix: str) -> list[Path]:
    found = (p for p in root.rglob(f"*{suffix}") if p.is_file() and not is_temporary(p))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def list_videos(root: str | os.PathLike) -> list[Path]:
    """Every ``.npz`` video under ``root`` (recursively), sorted by relative path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder does not exist")
    return _files(root, ".npz")


def read_dataset_json(root: str | os.PathLike) -> dict:
    """The ``dataset.json`` of a dataset folder (config, seeds, counts)."""
    path = Path(root) / DATASET_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (not a millivid dataset folder?)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: invalid JSON: {err}") from None


def detect_format(root: str | os.PathLike) -> str:
    """Guess a folder's layout: millivid (dataset.json, or npz files with 'poses' or without
    'actions'), teco-npz ('video' and 'actions' only), teco-mp4 (mp4 + action sidecars) or mp4."""
    root = Path(root)
    if (root / DATASET_JSON).is_file():
        return "millivid"
    mp4s = _files(root, ".mp4")
    if mp4s:
        return "teco-mp4" if formats.action_sidecar(mp4s[0]) is not None else "mp4"
    npzs = _files(root, ".npz")
    if not npzs:
        raise FileNotFoundError(f"{root}: no .npz or .mp4 videos found")
    for path in npzs[:8]:  # the first readable file decides
        try:
            keys = read_header(path)
        except VideoFileError:
            continue
        teco = "video" in keys and "actions" in keys and "poses" not in keys
        return "teco-npz" if teco else "millivid"
    return "millivid"


def _resolve_format(root: Path, fmt: str) -> str:
    fmt = FORMAT_ALIASES.get(fmt, fmt)
    if fmt == "auto":
        return detect_format(root)
    if fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; known: auto, {', '.join(FORMATS)}, dfot")
    return fmt


class VideoDataset:
    """The videos of one folder, loaded one at a time as ``VideoRecord``.

    ``format``: auto | millivid | teco-npz | teco-mp4 (alias dfot) | mp4.
    ``keys``: for millivid files, the keys to read besides ``video`` (None = all present).
    ``actions``: "ours" maps TECO/DFoT actions to millivid ids, "raw" keeps them.
    ``skip_bad``: headers are checked up front and bad files left out; ``try_load`` returns None
    for a file that fails later. Either way the file and reason land in ``skipped`` and a warning
    names them, instead of an exception stopping the job.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        format: str = "auto",
        keys: tuple[str, ...] | None = None,
        actions: str = "ours",
        skip_bad: bool = False,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: dataset folder does not exist")
        self.format = _resolve_format(self.root, format)
        self.keys, self.actions, self.skip_bad = keys, actions, skip_bad
        suffix = ".npz" if self.format in ("millivid", "teco-npz") else ".mp4"
        self.paths = _files(self.root, suffix)
        if not self.paths:
            raise FileNotFoundError(f"{self.root}: no {suffix} videos ({self.format} layout)")
        self.found = len(self.paths)  # before skipping
        self.skipped: list[tuple[Path, str]] = []
        if skip_bad:
            self.paths = [p for p in self.paths if self._header_ok(p)]

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> VideoRecord:
        """Read video ``index``; raises ``VideoFileError`` naming the file and key."""
        path = self.paths[index]
        if self.format == "millivid":
            return load_video(path, self.keys)
        if self.format == "teco-npz":
            return formats.read_teco_npz(path, self.actions)
        if self.format == "teco-mp4":
            return formats.read_teco_mp4(path, self.actions)
        return formats.read_plain_mp4(path)

    def frames(self, index: int) -> int | None:
        """Frame count of video ``index`` from its header (millivid layout), else None."""
        if self.format != "millivid" or self._known_bad(index):
            return None
        try:
            return read_header(self.paths[index])["video"][0][0]
        except (VideoFileError, KeyError, IndexError) as err:
            if not self.skip_bad:
                raise VideoFileError(self.paths[index], "video", f"no frame count: {err}") from None
            self._skip(self.paths[index], str(err))
            return None

    def load_window(self, index: int, start: int, stop: int) -> VideoRecord | None:
        """Frames ``[start, stop)`` of video ``index`` (millivid layout; uncompressed files are
        memory-mapped, so only the window is read). None for a bad file when ``skip_bad``."""
        if self.format != "millivid":
            raise ValueError(f"load_window reads the millivid layout, not {self.format}")
        if self._known_bad(index):
            return None
        try:
            return load_video_window(self.paths[index], start, stop, self.keys)
        except VideoFileError as err:
            if not self.skip_bad:
                raise
            self._skip(self.paths[index], str(err))
            return None

    def try_load(self, index: int) -> VideoRecord | None:
        """``load``, or None (recorded in ``skipped``) for a bad file when ``skip_bad``."""
        if self._known_bad(index):
            return None
        try:
            return self.load(index)
        except VideoFileError as err:
            if not self.skip_bad:
                raise
            self._skip(self.paths[index], str(err))
            return None

    def _known_bad(self, index: int) -> bool:
        """A file already found bad (only with ``skip_bad``): not read again."""
        return self.skip_bad and any(p == self.paths[index] for p, _ in self.skipped)

    def _skip(self, path: Path, reason: str) -> None:
        if any(p == path for p, _ in self.skipped):
            return  # reported once
        self.skipped.append((path, reason))
        warnings.warn(f"skipping bad video {reason}", stacklevel=3)

    def _header_ok(self, path: Path) -> bool:
        if path.suffix == ".mp4":
            ok = path.stat().st_size > 0
            if not ok:
                self._skip(path, f"{path}: empty mp4")
            return ok
        try:
            header = read_header(path)
            required = ("video",) if self.format == "millivid" else ("video", "actions")
            for key in required:
                if key not in header:
                    raise VideoFileError(path, key, "missing key")
            lengths = {k: shape[0] for k, (shape, _) in header.items() if k in KEYS and shape}
            if len(set(lengths.values())) > 1 and self.format == "millivid":
                raise VideoFileError(path, None, f"frame counts differ between keys: {lengths}")
        except VideoFileError as err:
            self._skip(path, str(err))
            return False
        return True


def check_dataset(
    root: str | os.PathLike, format: str = "auto", progress: bool = True
) -> tuple[int, list[tuple[Path, str]]]:
    """Read and validate every video of ``root``: (number checked, [(bad file, reason)]).

    For millivid datasets, also checks that ``dataset.json`` agrees with the files found.
    """
    root = Path(root)
    with warnings.catch_warnings():  # the bad files are returned, not warned about
        warnings.simplefilter("ignore")
        dataset = VideoDataset(root, format=format, skip_bad=True)
        sizes: dict[tuple[int, int], list[Path]] = {}
        for i in tqdm(range(len(dataset)), desc="check", unit="video", disable=not progress):
            record = dataset.try_load(i)
            if record is not None:
                sizes.setdefault(tuple(record.video.shape[1:3]), []).append(dataset.paths[i])
    bad = list(dataset.skipped)
    if len(sizes) > 1:  # one dataset trains one model: one frame size
        common = max(sizes, key=lambda s: len(sizes[s]))
        for size, paths in sizes.items():
            bad += [
                (p, f"{p}: frames {size[0]}x{size[1]}, most of the dataset {common[0]}x{common[1]}")
                for p in paths
                if size != common
            ]
    if dataset.format == "millivid" and (root / DATASET_JSON).is_file():
        bad.extend(_check_manifest(root, dataset.paths + [p for p, _ in bad]))
    return dataset.found, bad


def _check_manifest(root: Path, paths: list[Path]) -> list[tuple[Path, str]]:
    """Files listed in dataset.json that are missing from the folder."""
    try:
        meta = read_dataset_json(root)
    except ValueError as err:
        return [(root / DATASET_JSON, str(err))]
    present = {p.relative_to(root).as_posix() for p in paths}
    missing = [f for f in meta.get("files", []) if f not in present]
    return [(root / f, f"{root / f}: listed in {DATASET_JSON} but missing") for f in missing]
