"""Atomic file writes: write a temporary file beside the target, then rename it into place
(and ``read_json``, the reader of the JSON files written here).

A reader (or a resumed job) therefore sees either the previous complete file or the new
complete file under the final name, never a half-written one, even if the writer is killed.
Temporary names are unique (``mkstemp``), so two processes writing the same output never write
into one temporary file; the last rename wins. A job that writes many files of one folder (and
cleans up stale temporaries there) holds ``folder_lock`` so that a second one refuses to start.
This is the one way millivid writes a file atomically; it imports nothing from millivid, so
every package can use it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TMP_MARK = ".tmp-"  # temporary names: .<name>.tmp-<random><suffix>; never a dataset file
LOCK_NAME = ".lock"


class FolderBusyError(ValueError):
    """Another process holds the folder's lock (``folder_lock``)."""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, job: str) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``folder/.lock``, ``flock``) while the block runs;
    if another process holds it, raise ``FolderBusyError`` naming the folder and ``job``. The
    operating system drops the lock when its process ends, also when it is killed, so a lock is
    never left behind. Where ``fcntl`` does not exist (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(folder) / LOCK_NAME
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusyError(
                f"{folder}: another {job} is writing this folder; wait for it to finish or use "
                "another output folder"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes 0600 files; finished files get the usual permissions (read once: os.umask is
# process-wide, so calling it from writer threads could race).
_FILE_MODE = 0o666 & ~_read_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

    The temporary name keeps the target's suffix (ffmpeg picks the container from it) and starts
    with a dot. On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}{TMP_MARK}", suffix=path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON (and a final newline) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def check_writable(*paths: str | os.PathLike) -> None:
    """Fail now rather than after a long job when one of ``paths`` cannot be written: a path
    that is a folder, or a folder that cannot take a new file (the OSError names the path)."""
    for path in map(Path, paths):
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TMP_MARK}")
        os.close(fd)
        os.unlink(tmp)


def read_json(path: str | os.PathLike) -> Any:
    """The JSON content of ``path``; a file that is not valid JSON is a ValueError naming it
    (a missing one stays a FileNotFoundError)."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path}: not valid JSON ({err}); it may be truncated or hand-edited: fix or delete it"
        ) from err


def is_temporary(path: Path) -> bool:
    """True for the leftovers of an interrupted atomic write (never listed as data)."""
    return path.name.startswith(".") and TMP_MARK in path.name


def remove_stale_temporaries(root: str | os.PathLike) -> int:
    """Delete leftover temporaries under ``root`` (from a killed writer); return how many."""
    count = 0
    for p in Path(root).rglob(f"*{TMP_MARK}*"):
        if p.is_file() and is_temporary(p):
            p.unlink(missing_ok=True)
            count += 1
    return count
