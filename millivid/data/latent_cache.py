"""The latent cache: every level's latents of every frame of a dataset, one file per video.

Layout: ``ROOT/cache.json`` (levels, channels, level shapes, tokens per frame, video count, the
autoencoder run it came from, its kind and weight digest) and ``ROOT/<index:06d>.safetensors``
holding ``level0`` … ``level{L-1}`` (float16 [T, h_l, w_l, C]), ``actions`` (int64 [T]) and,
when the dataset has them, ``poses`` (float32 [T, 5]: x, y, z, yaw°, pitch°). Files are written
atomically (temp + rename), so an interrupted ``millivid ae encode`` resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from millivid.atomic import atomic_path, read_json, write_json_atomic


class LatentCache:
    """Read a latent cache: ``len(cache)``, ``cache.load(i) -> (levels, actions)``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        meta = self.root / "cache.json"
        try:
            self.meta = read_json(meta)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{meta}: not a latent cache (run `millivid ae encode`)"
            ) from err
        self.files = sorted(self.root.glob("*.safetensors"))
        if not self.files:
            raise FileNotFoundError(f"{self.root}: latent cache holds no videos")
        self._memory: dict[int, tuple[list[torch.Tensor], torch.Tensor]] = {}
        self._poses: dict[int, torch.Tensor | None] = {}

    def __len__(self) -> int:
        return len(self.files)

    @property
    def autoencoder_digest(self) -> str | None:
        """Weight digest of the autoencoder that wrote the cache (None: not recorded)."""
        return self.meta.get("autoencoder_digest")

    @property
    def autoencoder_kind(self) -> str | None:
        """Kind (``ae.kind``) of the autoencoder that wrote the cache (None: not recorded)."""
        return self.meta.get("autoencoder_kind")

    @property
    def channels(self) -> int:
        return int(self.meta["channels"])

    @property
    def tokens_per_frame(self) -> tuple[int, ...]:
        return tuple(self.meta["tokens_per_frame"])

    def load(self, i: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(levels: float32 [T, h_l, w_l, C] per level, actions int64 [T]); kept in memory."""
        if i not in self._memory:
            path = self.files[i]
            try:
                data = load_file(str(path))
            except Exception as err:
                raise ValueError(f"{path}: cannot read latent file ({err})") from err
            levels = []
            for lvl in range(int(self.meta["levels"])):
                if f"level{lvl}" not in data:
                    raise ValueError(f"{path}: key 'level{lvl}' missing")
                levels.append(data[f"level{lvl}"].float())
            self._memory[i] = (levels, data["actions"].long())
            self._poses[i] = data["poses"].float() if "poses" in data else None
        return self._memory[i]

    def load_poses(self, i: int) -> torch.Tensor:
        """Camera poses float32 [T, 5] of video ``i``; an error naming the file when the cache
        was encoded from a dataset without poses."""
        self.load(i)
        poses = self._poses[i]
        if poses is None:
            raise ValueError(
                f"{self.files[i]}: no 'poses' in the latent file; pose-conditioned models "
                "(model.condition = poses | both) need latents encoded from a dataset with poses"
            )
        return poses


def write_latent_video(
    path: Path, levels: list[torch.Tensor], actions: torch.Tensor, poses: torch.Tensor | None = None
) -> None:
    """Atomically write one video's latents (float16), actions and poses (float32 [T, 5])."""
    tensors = {
        f"level{i}": z.detach().to(torch.float16).cpu().contiguous() for i, z in enumerate(levels)
    }
    tensors["actions"] = actions.detach().long().cpu().contiguous()
    if poses is not None:
        tensors["poses"] = poses.detach().float().cpu().contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def write_cache_meta(root: Path, meta: dict) -> None:
    write_json_atomic(root / "cache.json", meta)
