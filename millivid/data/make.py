"""``make_dataset``: render world videos into a sharded, resumable dataset folder.

Layout: ``OUT/dataset.json`` and ``OUT/<shard:04d>/<index:06d>.npz`` (``shard_size`` videos per
sub-folder). Every file is written atomically, so after an interruption each file under its final
name is complete; a rerun with the same arguments renders only the missing ones and produces the
same bytes as an uninterrupted run. ``dataset.json`` is written first (``complete: false``, with
the seeds and, for a test set, the selection) and rewritten with ``complete: true`` at the end.

Test sets (paper A.1): seeds ``TEST_SEED_OFFSET + j`` for ``j < candidates``, each with its
actions chosen by ``make_videos(test=True)``; the ``videos`` candidates with the largest
``distance_covered`` are kept (paper: 10,000 candidates -> 1,000 videos; ``candidate_count`` is
the default count). Only the agent is simulated to rank candidates; only the kept ones are
rendered (same poses, far less work). Seeds come from ``millivid.world.split_seeds``, which
refuses a range that would leave its namespace, so training and test seeds never overlap.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch
from tqdm import tqdm

from millivid.atomic import folder_lock, remove_stale_temporaries, write_json_atomic
from millivid.data.dataset import DATASET_JSON, read_dataset_json
from millivid.data.videos import VideoRecord, save_video
from millivid.typed_config import to_dict
from millivid.world import distance_covered, split_seeds
from millivid.world import make_videos as world_videos
from millivid.world.agent import simulate
from millivid.world.config import WorldConfig
from millivid.world.terrain import generate_worlds
from millivid.world.videos import video_actions

SIDE_KEYS = ("labels", "depth")
PAPER_KEEP_FRACTION = 0.1  # paper A.1: 10,000 rendered candidates -> 1,000 test videos


def video_file(index: int, shard_size: int) -> str:
    """Relative path of video ``index``: ``<shard>/<index>.npz``."""
    return f"{index // shard_size:04d}/{index:06d}.npz"


def auto_batch(cfg: WorldConfig, device: str | torch.device) -> int:
    """Videos rendered at once: bounded by output memory (~2 GiB on GPU, 256 MiB on CPU)."""
    per_video = cfg.frames * cfg.size * cfg.size * 6  # rgb + label + fp16 depth bytes
    budget, cap = (2**31, 64) if torch.device(device).type == "cuda" else (2**28, 16)
    return max(1, min(cap, budget // per_video))


def candidate_count(videos: int, keep_fraction: float = PAPER_KEEP_FRACTION) -> int:
    """Candidates to simulate for a test set of ``videos`` kept videos (paper A.1: 1,000 / 0.1).

    The smallest count whose kept fraction is at most ``keep_fraction``: ceil(videos /
    keep_fraction), after rounding away float error (3 / 0.1 is 30, not 31).
    """
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"--keep-fraction must be in (0, 1], got {keep_fraction}")
    if videos < 1:
        raise ValueError(f"--videos must be >= 1, got {videos}")
    return max(videos, math.ceil(round(videos / keep_fraction, 6)))


def selection_distances(
    seeds: Sequence[int],
    cfg: WorldConfig,
    device: str | torch.device,
    batch: int,
    progress: bool = True,
    actions: torch.Tensor | None = None,
) -> list[float]:
    """``distance_covered`` of each test seed's trajectory, simulated without rendering;
    ``actions`` int64 [len(seeds), T]: the seeds' A.1 choices, when already made."""
    if actions is None:
        actions = video_actions(seeds, cfg, test=True)
    out: list[float] = []
    for i in tqdm(range(0, len(seeds), batch), desc="select", unit="batch", disable=not progress):
        world = generate_worlds(list(seeds[i : i + batch]), cfg, device)
        poses, _ = simulate(world, actions[i : i + batch].to(device), cfg)
        out.extend(distance_covered(poses).cpu().tolist())
    return out


# fewer processes than this choose actions in one process (with its threads, as fast: 200
# choices took 8.5 s in one process and 10.2 s over two on a 2-core CPU)
CHOICE_MIN_PROCESSES = 4


class ActionChoices:
    """Each seed's actions (``video_actions``), made once: the seeds asked for in one call are
    chosen over ``workers`` processes (at most one per CPU core) when that makes at least
    ``CHOICE_MIN_PROCESSES``."""

    def __init__(self, cfg: WorldConfig, test: bool, workers: int = 1, progress: bool = False):
        self.cfg, self.test, self.progress = cfg, test, progress
        processes = min(workers, os.cpu_count() or 1)
        self.processes = processes if processes >= CHOICE_MIN_PROCESSES else 1
        self.known: dict[int, torch.Tensor] = {}

    def choose(self, seeds: Sequence[int]) -> None:
        """Make the actions of those of ``seeds`` not made yet, in one go."""
        missing = [s for s in dict.fromkeys(seeds) if s not in self.known]
        rows = video_actions(missing, self.cfg, self.test, self.processes, self.progress)
        self.known.update(zip(missing, rows, strict=True))

    def __call__(self, seeds: Sequence[int]) -> torch.Tensor:
        """int64 [len(seeds), T]."""
        self.choose(seeds)
        return torch.stack([self.known[s] for s in seeds])


SELECTION_DECIMALS = 2  # distances are sums of 0.25-block moves: their float noise is ~1e-4


def keep_farthest(distances: Sequence[float], keep: int) -> list[int]:
    """Indices of the ``keep`` largest distances (ties to the lower index), in rank order.

    Distances are rounded to ``SELECTION_DECIMALS`` first: many candidates cover exactly the
    same distance, and without rounding the float noise of the simulation (which differs between
    devices) would pick among them, so a CPU and a GPU would select different test sets."""
    rounded = [round(float(d), SELECTION_DECIMALS) for d in distances]
    return sorted(range(len(rounded)), key=lambda j: (-rounded[j], j))[:keep]


def plan_seeds(
    videos: int,
    cfg: WorldConfig,
    test: bool,
    candidates: int,
    first_seed: int,
    device: str | torch.device,
    batch: int,
    progress: bool = True,
    choices: ActionChoices | None = None,
) -> tuple[list[int], dict | None]:
    """The seeds to render, in file order, and the test-set selection record (or None);
    ``choices`` makes the candidates' actions (default: one after another)."""
    if not test:
        return split_seeds(first_seed, videos, test=False), None
    if candidates < videos:
        raise ValueError(f"--candidates {candidates} must be >= --videos {videos}")
    pool = split_seeds(first_seed, candidates, test=True)
    actions = choices(pool) if choices else None
    dist = selection_distances(pool, cfg, device, batch, progress, actions)
    kept = sorted(pool[j] for j in keep_farthest(dist, videos))
    selection = {
        "rule": "paper A.1: keep the candidates with the largest distance_covered "
        f"(rounded to {SELECTION_DECIMALS} decimals; ties to the earlier seed)",
        "candidates": candidates,
        "kept": videos,
        "candidate_seeds": pool,
        "distance_covered": [round(d, 4) for d in dist],
    }
    return kept, selection


def _spec(cfg, videos, test, candidates, first_seed, keys, shard_size, compress, preset) -> dict:
    return {
        "format": "millivid",
        "version": 1,
        "split": "test" if test else "train",
        "preset": preset,
        "world": to_dict(cfg),
        "videos": videos,
        "frames": cfg.frames,
        "size": cfg.size,
        "keys": list(keys),
        "shard_size": shard_size,
        "compress": compress,
        "candidates": candidates,
        "first_seed": first_seed,
        "seeds": [],
        "files": [video_file(i, shard_size) for i in range(videos)],
    }


def _check_resume(out: Path, spec: dict) -> dict | None:
    """The existing dataset.json's selection if it matches ``spec``; error on any difference."""
    if not (out / DATASET_JSON).is_file():
        return None
    old = read_dataset_json(out)
    for key in (
        "split",
        "world",
        "videos",
        "keys",
        "shard_size",
        "compress",
        "candidates",
        "first_seed",
    ):
        if old.get(key) != spec[key]:
            raise ValueError(
                f"{out / DATASET_JSON}: key {key!r} differs from this run "
                f"({old.get(key)!r} != {spec[key]!r}); use a new --out or delete the folder"
            )
    return old


def make_dataset(
    out: str | os.PathLike,
    cfg: WorldConfig,
    videos: int,
    *,
    test: bool = False,
    candidates: int | None = None,
    first_seed: int = 0,
    device: str | torch.device = "cpu",
    batch: int | None = None,
    shard_size: int = 256,
    side_outputs: bool = True,
    compress: bool = True,
    workers: int | None = None,
    preset: str = "",
    progress: bool = True,
    make_videos: Callable | None = None,
) -> dict:
    """Render ``videos`` world videos into ``out`` (resumable); return the final dataset.json.

    ``make_videos`` defaults to ``millivid.world.make_videos`` (replaceable for tests).
    """
    if videos < 1:
        raise ValueError(f"--videos must be >= 1, got {videos}")
    if make_videos is None:
        make_videos = world_videos
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, "millivid data make"):  # its temporaries are not stale: keep out
        remove_stale_temporaries(out)
        batch = batch or auto_batch(cfg, device)
        workers = workers or min(8, os.cpu_count() or 1)
        choices = ActionChoices(cfg, test, workers, progress)
        keys = ("video", "actions", "poses", *(SIDE_KEYS if side_outputs else ()))
        if test and candidates is None:
            candidates = candidate_count(videos)
        candidates = candidates if test else None
        meta = _spec(cfg, videos, test, candidates, first_seed, keys, shard_size, compress, preset)
        old = _check_resume(out, meta)
        if old is not None and test and old.get("seeds"):  # the selection is not redone
            seeds, selection = old["seeds"], old.get("selection")
        else:
            seeds, selection = plan_seeds(
                videos, cfg, test, candidates, first_seed, device, batch, progress, choices
            )
            if old is not None and old.get("seeds") != seeds:
                raise ValueError(f"{out / DATASET_JSON}: key 'seeds' differs from this run")
        meta.update(seeds=seeds, complete=False, **({"selection": selection} if selection else {}))
        write_json_atomic(out / DATASET_JSON, meta)

        todo = [i for i, f in enumerate(meta["files"]) if not (out / f).is_file()]
        choices.choose([seeds[i] for i in todo])  # all at once: over the processes
        _render(
            out,
            cfg,
            meta,
            todo,
            keys,
            make_videos,
            device,
            batch,
            compress,
            workers,
            progress,
            choices,
        )
        meta["complete"] = True
        write_json_atomic(out / DATASET_JSON, meta)
        return meta


def _render(
    out, cfg, meta, todo, keys, make_videos, device, batch, compress, workers, progress, choices
):
    """Render the ``todo`` indices in batches; write files on a thread pool (zlib frees the GIL)."""
    bar = tqdm(
        total=len(meta["files"]),
        initial=len(meta["files"]) - len(todo),
        desc="data make",
        unit="video",
        disable=not progress,
    )
    start, frames_done = time.perf_counter(), 0
    pending: list[Future] = []
    with ThreadPoolExecutor(workers) as pool:
        for b in range(0, len(todo), batch):
            indices = todo[b : b + batch]
            seeds = [meta["seeds"][i] for i in indices]
            rendered = make_videos(seeds, cfg, device, test=choices.test, actions=choices(seeds))
            arrays = {k: getattr(rendered, k).cpu().numpy() for k in keys}
            while len(pending) > 2 * batch:  # bound the memory held by queued writes
                pending.pop(0).result()
            for j, i in enumerate(indices):
                record = VideoRecord(**{k: arrays[k][j] for k in keys})
                pending.append(pool.submit(save_video, out / meta["files"][i], record, compress))
            for fut in [f for f in pending if f.done()]:
                fut.result()  # surface a write error now, not at the end
            pending = [f for f in pending if not f.done()]
            frames_done += len(indices) * arrays["video"].shape[1]
            bar.update(len(indices))
            rate = frames_done / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix_str(f"{rate:,.0f} frames/s", refresh=False)
        for fut in pending:
            fut.result()
    bar.close()
