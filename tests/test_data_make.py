"""``millivid data make`` / ``data check``: sharding, resume, test-set selection, CLI output."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.cli import data as cli_data
from millivid.cli import main
from millivid.data import make as make_mod
from millivid.data.dataset import list_videos, read_dataset_json
from millivid.data.make import candidate_count, keep_farthest, make_dataset, plan_seeds
from millivid.data.videos import load_video
from millivid.presets import load_preset
from millivid.world import TEST_SEED_OFFSET, WorldVideos, distance_covered
from millivid.world import videos as world_videos

TINY = replace(load_preset("tiny").world, frames=6, size=8, test_context_frames=2)


def fake_make_videos(seeds, cfg, device="cpu", test=False, actions=None):
    """Deterministic per-seed arrays with the world's shapes and dtypes."""
    out = []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s) % 2**31 + (7 if test else 0))
        t, n = cfg.frames, cfg.size
        out.append(
            WorldVideos(
                video=torch.randint(0, 256, (1, t, n, n, 3), generator=g, dtype=torch.uint8),
                actions=torch.randint(0, 3, (1, t), generator=g),
                poses=torch.randn(1, t, 5, generator=g),
                labels=torch.randint(0, 9, (1, t, n, n), generator=g, dtype=torch.uint8),
                depth=torch.rand(1, t, n, n, generator=g).half(),
            )
        )
    return WorldVideos(
        *(torch.cat([getattr(v, k) for v in out]) for k in WorldVideos.__annotations__)
    )


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_sharded_layout_and_dataset_json(tmp_path):
    meta = make_dataset(
        tmp_path,
        TINY,
        5,
        batch=2,
        shard_size=2,
        preset="tiny",
        progress=False,
        make_videos=fake_make_videos,
    )
    files = [p.relative_to(tmp_path).as_posix() for p in list_videos(tmp_path)]
    assert files == [
        "0000/000000.npz",
        "0000/000001.npz",
        "0001/000002.npz",
        "0001/000003.npz",
        "0002/000004.npz",
    ]
    on_disk = read_dataset_json(tmp_path)
    assert on_disk == json.loads(json.dumps(meta))
    assert (
        on_disk["complete"] and on_disk["seeds"] == [0, 1, 2, 3, 4] and on_disk["split"] == "train"
    )
    assert on_disk["world"]["frames"] == 6 and on_disk["files"] == files
    rec = load_video(tmp_path / files[3])
    want = fake_make_videos([3], TINY)
    np.testing.assert_array_equal(rec.video, want.video[0].numpy())
    np.testing.assert_array_equal(rec.depth, want.depth[0].numpy())


def test_interrupted_make_resumes_to_identical_bytes(tmp_path):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    kwargs = dict(batch=2, shard_size=3, preset="tiny", progress=False)
    make_dataset(full, TINY, 7, make_videos=fake_make_videos, **kwargs)

    calls = []

    def interrupted(seeds, *args, **kw):
        calls.append(list(seeds))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fake_make_videos(seeds, *args, **kw)

    with pytest.raises(KeyboardInterrupt):
        make_dataset(resumed, TINY, 7, make_videos=interrupted, **kwargs)
    assert len(list_videos(resumed)) == 4  # two batches of two written, then the stop
    assert read_dataset_json(resumed)["complete"] is False

    rendered = []

    def recording(seeds, *args, **kw):
        rendered.extend(seeds)
        return fake_make_videos(seeds, *args, **kw)

    make_dataset(resumed, TINY, 7, make_videos=recording, **kwargs)
    assert rendered == [4, 5, 6]  # only the missing videos
    assert tree_bytes(resumed) == tree_bytes(full)


def test_resume_with_different_settings_is_refused(tmp_path):
    make_dataset(tmp_path, TINY, 2, progress=False, make_videos=fake_make_videos)
    with pytest.raises(ValueError, match=r"dataset.json: key 'world' differs"):
        make_dataset(
            tmp_path, replace(TINY, size=16), 2, progress=False, make_videos=fake_make_videos
        )
    with pytest.raises(ValueError, match="key 'first_seed' differs"):
        make_dataset(tmp_path, TINY, 2, first_seed=5, progress=False, make_videos=fake_make_videos)
    with pytest.raises(ValueError, match="key 'videos' differs"):
        make_dataset(tmp_path, TINY, 3, progress=False, make_videos=fake_make_videos)


def test_test_set_keeps_largest_distance(tmp_path, monkeypatch):
    distances = {TEST_SEED_OFFSET + j: d for j, d in enumerate([3.0, 9.0, 1.0, 7.0, 9.0, 2.0])}
    asked = []

    def fake_distances(seeds, cfg, device, batch, progress=True, actions=None):
        asked.extend(seeds)
        return [distances[s] for s in seeds]

    monkeypatch.setattr(make_mod, "selection_distances", fake_distances)
    seen_test = []

    def render(seeds, cfg, device="cpu", test=False, actions=None):
        seen_test.append(test)
        return fake_make_videos(seeds, cfg, device, test)

    meta = make_dataset(
        tmp_path, TINY, 3, test=True, candidates=6, progress=False, make_videos=render
    )
    off = TEST_SEED_OFFSET
    assert meta["seeds"] == [off + 1, off + 3, off + 4]
    assert meta["split"] == "test" and meta["selection"]["candidates"] == 6
    assert all(seen_test) and sorted(asked) == sorted(distances)
    # a rerun reads the selection from dataset.json instead of simulating again
    asked.clear()
    make_dataset(tmp_path, TINY, 3, test=True, candidates=6, progress=False, make_videos=render)
    assert asked == []
    with pytest.raises(ValueError, match="--candidates 2 must be >= --videos 3"):
        make_dataset(
            tmp_path / "x", TINY, 3, test=True, candidates=2, progress=False, make_videos=render
        )


def test_real_world_tiny_test_set(tmp_path, monkeypatch):
    """Against the real world: kept videos' rendered poses match the ranked distances."""
    cfg = replace(
        load_preset("tiny").world,
        frames=24,
        size=8,
        test_context_frames=8,
        test_action_candidates=4,
        test_keep_lowest=2,
    )
    meta = make_dataset(tmp_path, cfg, 2, test=True, candidates=8, progress=False, workers=1)
    sel = meta["selection"]
    ranked = sorted(sel["distance_covered"], reverse=True)
    kept = []
    for f in meta["files"]:
        rec = load_video(tmp_path / f)
        assert rec.video.shape == (24, 8, 8, 3) and rec.labels.shape == (24, 8, 8)
        kept.append(float(distance_covered(torch.from_numpy(rec.poses)[None])[0]))
    assert sorted(kept, reverse=True) == pytest.approx(ranked[:2], abs=1e-3)
    assert all(s >= TEST_SEED_OFFSET for s in meta["seeds"])
    # the actions chosen over 4 processes: the same test set, byte for byte
    pools = []

    class Pool(world_videos.ProcessPoolExecutor):
        def __init__(self, processes, *args):
            pools.append(processes)
            super().__init__(processes, *args)

    monkeypatch.setattr(world_videos, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(make_mod.os, "cpu_count", lambda: 4)  # at most one process per core
    spread = make_dataset(
        tmp_path / "spread", cfg, 2, test=True, candidates=8, progress=False, workers=4
    )
    assert pools == [4]
    assert spread["seeds"] == meta["seeds"] and spread["selection"] == sel
    assert tree_bytes(tmp_path / "spread") == {
        k: v for k, v in tree_bytes(tmp_path).items() if not k.startswith("spread/")
    }


def test_cli_make_and_check(tmp_path, capsys):
    out = tmp_path / "ds"
    args = [
        "data",
        "make",
        "--preset",
        "tiny",
        "--videos",
        "3",
        "--out",
        str(out),
        "--frames",
        "5",
        "--size",
        "8",
        "--shard-size",
        "2",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "train dataset: 3 videos x 5 frames at 8x8" in printed
    assert len(list_videos(out)) == 3
    assert main(["data", "check", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"checked 3 videos in {out}: 0 bad"

    first = out / "0000" / "000001.npz"
    first.write_bytes(first.read_bytes()[:100])
    (out / "0001" / "000002.npz").unlink()
    assert main(["data", "check", str(out)]) == 1
    lines = capsys.readouterr().out.splitlines()
    bad = [line for line in lines if line.startswith("BAD ")]
    assert len(bad) == 2
    assert any("000001.npz" in line and "truncated or corrupt" in line for line in bad)
    assert any(
        "000002.npz" in line and "listed in dataset.json but missing" in line for line in bad
    )
    assert lines[-1].endswith(": 2 bad")

    # rerunning make repairs the deleted file; the truncated one has to be removed by hand
    first.unlink()
    assert main(args) == 0
    assert main(["data", "check", str(out)]) == 0


def test_cli_make_test_flags(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_make_dataset(out, cfg, videos, **kw):
        seen.update(kw, videos=videos)
        return {"split": "test", "videos": videos, "frames": cfg.frames, "size": cfg.size}

    monkeypatch.setattr(cli_data, "make_dataset", fake_make_dataset)
    args = ["data", "make", "--preset", "mini", "--videos", "100", "--out", str(tmp_path), "--test"]
    assert main(args) == 0
    assert seen["test"] and seen["candidates"] == 1000 and seen["videos"] == 100
    assert main(args + ["--keep-fraction", "0.5"]) == 0 and seen["candidates"] == 200
    assert main(args + ["--candidates", "150"]) == 0 and seen["candidates"] == 150
    assert main(args[:5] + ["1"] + args[6:] + ["--keep-fraction", "0.3"]) == 0
    assert seen["candidates"] == 4  # ceil(1 / 0.3): at most 30 % kept (round() gave 3)
    assert main(args + ["--keep-fraction", "0"]) == 1
    assert "--keep-fraction" in capsys.readouterr().err


def test_dataset_seeds_stay_in_their_namespace(tmp_path):
    """Training seeds may not run into the test namespace, nor test seeds below it."""
    with pytest.raises(ValueError, match="TEST_SEED_OFFSET"):
        plan_seeds(10, TINY, False, None, TEST_SEED_OFFSET - 5, "cpu", 1, progress=False)
    with pytest.raises(ValueError, match="must be >= 0"):
        plan_seeds(1, TINY, True, 4, -2, "cpu", 1, progress=False)
    with pytest.raises(ValueError, match="TEST_SEED_OFFSET"):
        make_dataset(
            tmp_path,
            TINY,
            3,
            first_seed=TEST_SEED_OFFSET - 1,
            progress=False,
            make_videos=fake_make_videos,
        )


@pytest.mark.parametrize(
    "videos, fraction, expected",
    [(1000, 0.1, 10000), (3, 0.1, 30), (21, 0.7, 30), (1, 0.3, 4), (1, 0.4, 3), (7, 1.0, 7)],
)
def test_candidate_count_closed_forms(videos, fraction, expected):
    assert candidate_count(videos, fraction) == expected


@given(videos=st.integers(1, 5000), fraction=st.floats(0.001, 1.0))
def test_candidate_count_is_the_fewest_keeping_at_most_the_fraction(videos, fraction):
    c = candidate_count(videos, fraction)
    assert c >= videos
    assert videos / c <= fraction * (1 + 1e-6)
    if c > videos:
        assert videos / (c - 1) > fraction


def test_cli_and_make_dataset_share_the_candidate_count(tmp_path, monkeypatch):
    calls = []

    def spy(videos, keep_fraction=make_mod.PAPER_KEEP_FRACTION):
        calls.append((videos, keep_fraction))
        return videos + 1

    for module in (make_mod, cli_data):  # the CLI calls it by the name it imported
        monkeypatch.setattr(module, "candidate_count", spy)
    monkeypatch.setattr(make_mod, "selection_distances", lambda s, *a, **k: [1.0] * len(s))
    meta = make_dataset(
        tmp_path / "a", TINY, 2, test=True, progress=False, make_videos=fake_make_videos
    )
    assert meta["candidates"] == 3 and calls == [(2, 0.1)]
    seen = {}
    monkeypatch.setattr(
        cli_data,
        "make_dataset",
        lambda out, cfg, videos, **kw: (
            seen.update(kw) or {"split": "test", "videos": videos, "frames": 1, "size": 1}
        ),
    )
    args = ["data", "make", "--preset", "tiny", "--videos", "5", "--out", str(tmp_path), "--test"]
    assert main(args + ["--keep-fraction", "0.3"]) == 0
    assert seen["candidates"] == 6 and calls[-1] == (5, 0.3)


def test_a_second_make_into_a_folder_being_written_is_refused(tmp_path):
    """Two runs into one folder would delete each other's temporaries (as stale) and could mix
    two selections; the second one refuses at once and the first finishes whole."""
    out, kwargs = tmp_path / "d", dict(batch=2, shard_size=3, preset="tiny", progress=False)
    refused = []

    def second_run_meanwhile(seeds, *args, **kw):
        if not refused:
            with pytest.raises(ValueError, match="another millivid data make is writing") as err:
                make_dataset(out, TINY, 5, make_videos=fake_make_videos, **kwargs)
            refused.append(str(err.value))
        return fake_make_videos(seeds, *args, **kw)

    make_dataset(out, TINY, 5, make_videos=second_run_meanwhile, **kwargs)
    assert refused and refused[0].startswith(str(out))
    assert read_dataset_json(out)["complete"] and len(list_videos(out)) == 5
    make_dataset(out, TINY, 5, make_videos=fake_make_videos, **kwargs)  # the lock is gone


@settings(max_examples=200, deadline=None)
@given(
    quarters=st.lists(st.integers(700, 900), min_size=1, max_size=60),
    noise=st.lists(st.floats(-1e-3, 1e-3), min_size=60, max_size=60),
    keep=st.integers(1, 60),
)
def test_selection_ignores_float_noise_and_breaks_ties_by_seed(quarters, noise, keep):
    # distances are sums of quarter-block moves; many candidates tie exactly, and the
    # simulation's float noise (which differs between CPU and GPU) must not pick among them
    exact = [q / 4 for q in quarters]
    noisy = [d + e for d, e in zip(exact, noise, strict=False)]
    kept = keep_farthest(exact, keep)
    assert keep_farthest(noisy, keep) == kept
    assert len(kept) == min(keep, len(exact))
    ranked = [(-exact[j], j) for j in kept]
    assert ranked == sorted(ranked)  # largest first, ties to the lower index
    rest = set(range(len(exact))) - set(kept)
    assert all(exact[j] <= min(exact[k] for k in kept) for j in rest)
