"""The one error type of the data stage: a bad video file, named with its key."""

from __future__ import annotations

import os
from pathlib import Path


class VideoFileError(ValueError):
    """A video file is missing a key, truncated, corrupt or has a wrong dtype/shape.

    ``str(err)`` reads ``<file> key '<key>': <problem>`` so users know what to fix or delete.
    """

    def __init__(self, path: str | os.PathLike, key: str | None, problem: str):
        self.path, self.key, self.problem = Path(path), key, problem
        where = f"{self.path}" + (f" key {key!r}" if key else "")
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # pickled whole, e.g. from a DataLoader worker to the main process
        return type(self), (self.path, self.key, self.problem)
