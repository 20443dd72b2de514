"""Segmentation probe: metrics, save/load, a tiny trained probe orders original > shifted > random."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import torch

from millivid.evaluate.probe import (
    ProbeConfig,
    SegmentationProbe,
    load_probe,
    mean_iou,
    pixel_accuracy,
    save_probe,
)
from millivid.evaluate.probe_task import ProbeTask, probe_scores, render_probe_data
from millivid.train import TrainConfig, load_checkpoint, train


def test_accuracy_and_miou_closed_form():
    gt = torch.tensor([[[0, 0], [1, 1]]])
    assert pixel_accuracy(gt, gt).item() == 1.0 and mean_iou(gt, gt, 4).item() == 1.0
    pred = torch.tensor([[[0, 1], [1, 1]]])
    assert pixel_accuracy(pred, gt).item() == 0.75
    # class 0: inter 1, union 2 -> 0.5; class 1: inter 2, union 3 -> 2/3
    assert mean_iou(pred, gt, 4).item() == pytest.approx((0.5 + 2 / 3) / 2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from millivid.presets import PRESETS
    from millivid.world import TEST_SEED_OFFSET

    world = replace(PRESETS["tiny"].world, size=32)
    data = render_probe_data(world, list(range(8)), 24, stride=2)  # many seeds: all block kinds
    held = render_probe_data(world, [TEST_SEED_OFFSET], 24, stride=2)
    task = ProbeTask(data, ProbeConfig(width=16), batch_size=16)
    run = tmp_path_factory.mktemp("probe")
    cfg = TrainConfig(steps=150, batch_size=16, lr=3e-3, warmup_steps=8, checkpoint_every=1000)
    train(task, cfg, run, config={}, device="cpu", show_progress=False)
    model = task.build_model()
    model.load_state_dict(load_checkpoint(run)[0])
    return model.eval(), held


def test_task_batches_are_deterministic(trained):
    _, held = trained
    task = ProbeTask(held, ProbeConfig(width=8), batch_size=4)
    a = task.batch(3, torch.Generator().manual_seed(7))
    b = task.batch(3, torch.Generator().manual_seed(7))
    assert torch.equal(a.frames, b.frames) and torch.equal(a.labels, b.labels)


def test_tiny_probe_learns_and_orders_shifted(trained):
    model, held = trained
    scores = probe_scores(model, held)
    assert scores["pixel_accuracy"] > 0.7
    frames, labels = held.frames, held.labels.long()
    shifted = torch.roll(frames, 3, dims=2)
    noise = torch.randint(
        0, 256, frames.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    acc = {
        k: pixel_accuracy(model.predict(f), labels).mean().item()
        for k, f in (("orig", frames), ("shift", shifted), ("noise", noise))
    }
    miou = {
        k: mean_iou(model.predict(f), labels, 16).mean().item()
        for k, f in (("orig", frames), ("shift", shifted), ("noise", noise))
    }
    assert acc["orig"] > acc["shift"] > acc["noise"]
    assert miou["orig"] > miou["shift"] > miou["noise"]


def test_save_load_roundtrip_and_errors(trained, tmp_path):
    model, held = trained
    save_probe(model, tmp_path / "probe", {"report": {"x": 1}})
    loaded = load_probe(tmp_path / "probe")
    assert torch.equal(loaded.predict(held.frames[:2]), model.predict(held.frames[:2]))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_probe(tmp_path / "absent")
    save_probe(SegmentationProbe(ProbeConfig(width=8)), tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text('{"probe": {"width": 16}}')
    with pytest.raises(ValueError, match="model.safetensors"):
        load_probe(tmp_path / "other")


def test_probe_metrics_through_suite(trained, tmp_path):
    from millivid.evaluate.config import EvalConfig
    from millivid.evaluate.suite import MetricSuite

    model, held = trained
    save_probe(model, tmp_path / "p")
    suite = MetricSuite(EvalConfig(probe_weights=str(tmp_path / "p")))
    out = suite.per_frame(["probe_acc", "probe_miou"], held.frames, held.frames, held.labels)
    assert len(out["probe_acc"]) == len(held.frames)
    with pytest.raises(ValueError, match="labels"):
        suite.per_frame(["probe_acc"], held.frames, held.frames, None)


def test_shipped_probe_labels_a_tiny_world_frame():
    """checkpoints/probe (trained on `mini`, 64²) through load_probe on held-out tiny (32²) frames."""
    from millivid.presets import PRESETS
    from millivid.world import TEST_SEED_OFFSET

    model = load_probe("checkpoints/probe")  # relative: found from the repository root
    held = render_probe_data(PRESETS["tiny"].world, [TEST_SEED_OFFSET], 8, stride=4)
    labels = held.labels.long()
    acc = pixel_accuracy(model.predict(held.frames), labels).mean().item()
    # chance = always the most frequent block kind of these frames (~0.53, mostly sky)
    majority = max((labels == k).double().mean().item() for k in range(model.cfg.classes))
    assert acc > 0.9 and acc > majority + 0.3, (acc, majority)


def test_missing_probe_file_is_named(tmp_path):
    save_probe(SegmentationProbe(ProbeConfig(width=8)), tmp_path / "p")
    for name in ("model.safetensors", "config.json"):
        (tmp_path / "p" / name).rename(tmp_path / name)
        with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "p" / name))):
            load_probe(tmp_path / "p")
        (tmp_path / name).rename(tmp_path / "p" / name)
