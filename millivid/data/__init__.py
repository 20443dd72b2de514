"""millivid.data: video datasets on disk (own npz layout, TECO/DFoT, mp4) and clip sampling.

See docs/DATA.md. Writing a dataset from the world: ``millivid.data.make.make_dataset``; from a
folder of videos: ``millivid.data.import_videos.import_videos``.
"""

from millivid.data.clips import ClipDataset, ClipStream, clip_loader
from millivid.data.dataset import (
    VideoDataset,
    check_dataset,
    detect_format,
    list_videos,
    read_dataset_json,
)
from millivid.data.errors import VideoFileError
from millivid.data.videos import VideoRecord, load_video, read_mp4, save_video, write_mp4

__all__ = [
    "ClipDataset",
    "ClipStream",
    "VideoDataset",
    "VideoFileError",
    "VideoRecord",
    "check_dataset",
    "clip_loader",
    "detect_format",
    "list_videos",
    "load_video",
    "read_dataset_json",
    "read_mp4",
    "save_video",
    "write_mp4",
]
