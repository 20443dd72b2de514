"""Readers for foreign long-video layouts, each returning a ``VideoRecord``.

* ``teco-npz``: one ``.npz`` per video with ``video`` uint8 [T, H, W, 3] and ``actions`` int
  [T] (TECO's DMLab/Minecraft npz files, as written by wilson1yan/collect-minecraft with
  ``--file_type npz``; data folders ``<split>/<shard>/<name>.npz``).
* ``teco-mp4``: ``<name>.mp4`` frames with the actions in a sibling ``<name>.npz`` (key
  ``actions``) or ``<name>.npy``. This is TECO's Minecraft release as re-used by DFoT
  (``minecraft/{training,validation}/**/<name>.{mp4,npz}``, 300 frames of 128x128).
* ``mp4``: a folder of ``.mp4`` files without actions.

Minecraft action encoding of those datasets (collect-minecraft): 0 = no action (the reset frame,
index 0), 1 = forward (+jump), 2 = turn left 20° (camera yaw -20), 3 = turn right 20°; action t
led from frame t-1 to frame t, which is millivid's convention too. ``actions="ours"`` maps them to
millivid's ids (0 forward, 1 left, 2 right; the reset no-op becomes 0, which no frame depends
on); ``actions="raw"`` keeps the dataset's ids. Turn sizes differ (20° per frame there, 90° over
``world.turn_frames`` frames here). When there is one action more than frames (DFoT reads
``actions[1:]``), the leading reset action is dropped so frame and action counts match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from millivid.data.errors import VideoFileError
from millivid.data.mp4 import read_mp4
from millivid.data.videos import VideoRecord, load_arrays, read_npy, validate_arrays

TECO_TO_OURS = np.array([0, 0, 1, 2], dtype=np.int64)  # index = TECO/DFoT id
ACTION_MODES = ("ours", "raw")


def teco_actions(actions: np.ndarray, frames: int, path: Path, mode: str = "ours") -> np.ndarray:
    """Align TECO/DFoT actions int [T or T+1] to ``frames`` and map them (module docstring)."""
    if mode not in ACTION_MODES:
        raise ValueError(f"actions mode must be one of {ACTION_MODES}, got {mode!r}")
    actions = np.asarray(actions)
    if actions.ndim == 2 and actions.shape[1] == 4:  # one-hot, as DFoT feeds its model
        actions = actions.argmax(axis=1)
    if actions.ndim != 1 or not np.issubdtype(actions.dtype, np.integer):
        raise VideoFileError(
            path, "actions", f"expected int [T] actions, got {actions.dtype} {list(actions.shape)}"
        )
    if len(actions) == frames + 1:
        actions = actions[1:]
    if len(actions) != frames:
        raise VideoFileError(
            path, "actions", f"expected {frames} or {frames + 1} actions, got {len(actions)}"
        )
    if mode == "raw":
        return actions.astype(np.int64)
    if actions.size and (actions.min() < 0 or actions.max() > 3):
        raise VideoFileError(
            path, "actions", f"TECO/DFoT actions are 0..3, got {actions.min()}..{actions.max()}"
        )
    return TECO_TO_OURS[actions]


def read_teco_npz(path: Path, mode: str = "ours") -> VideoRecord:
    """A TECO-style npz with ``video`` and ``actions``."""
    arrays = load_arrays(path, ["video", "actions"])
    video = validate_arrays({"video": arrays["video"]}, path)["video"]
    return VideoRecord(video=video, actions=teco_actions(arrays["actions"], len(video), path, mode))


def action_sidecar(video_path: Path) -> Path | None:
    """The ``.npz``/``.npy`` file holding an mp4's actions, or None."""
    for suffix in (".npz", ".npy"):
        side = video_path.with_suffix(suffix)
        if side.is_file():
            return side
    return None


def read_sidecar_actions(side: Path) -> np.ndarray:
    """Actions from a sidecar ``.npz`` (key ``actions``) or ``.npy``."""
    if side.suffix == ".npz":
        return load_arrays(side, ["actions"])["actions"]
    return read_npy(side, "actions")


def read_teco_mp4(path: Path, mode: str = "ours") -> VideoRecord:
    """A TECO/DFoT mp4 with its actions beside it."""
    side = action_sidecar(path)
    if side is None:
        raise VideoFileError(path, "actions", "no sibling .npz/.npy with the actions")
    video = read_mp4(path)
    return VideoRecord(
        video=video, actions=teco_actions(read_sidecar_actions(side), len(video), side, mode)
    )


def read_plain_mp4(path: Path) -> VideoRecord:
    """An mp4 without actions."""
    return VideoRecord(video=read_mp4(path))
