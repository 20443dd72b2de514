"""Action probe: pairs, cost volume, balanced task, loading, the action_acc metric (batching,
missing inputs) and the shipped probe on held-out, copy-last and shifted test-seed videos."""

from __future__ import annotations

import json
import re

import pytest
import torch

from millivid.evaluate.action_probe import (
    ActionProbe,
    ActionProbeConfig,
    action_accuracy,
    correlation,
    frame_pairs,
    load_action_probe,
    save_action_probe,
)
from millivid.evaluate.action_probe_task import (
    ActionData,
    ActionProbeTask,
    action_scores,
    flip_pairs,
    render_action_data,
)
from millivid.evaluate.config import EvalConfig
from millivid.evaluate.probe import REPO_ROOT
from millivid.evaluate.suite import MetricSuite

SHIPPED = "checkpoints/action_probe"  # relative: found from the repository root
FORWARD, LEFT, RIGHT = 0, 1, 2
TURN_SHIFT = 12  # px a 15° turn moves a 64² frame (left turn: the view moves right)


def suite(path, batch_frames: int = 64) -> MetricSuite:
    return MetricSuite(EvalConfig(action_probe_weights=str(path), batch_frames=batch_frames), "cpu")


@pytest.fixture(scope="module")
def held():
    """Two held-out test-seed `mini` videos (64²) of 96 frames, each with turns."""
    from millivid.presets import PRESETS
    from millivid.world import TEST_SEED_OFFSET

    data = render_action_data(PRESETS["mini"].world, [TEST_SEED_OFFSET, TEST_SEED_OFFSET + 1], 96)
    assert (data.actions[:, 1:] != FORWARD).sum() >= 12  # enough turn frames to mean something
    return data


@pytest.fixture(scope="module")
def shipped():
    return load_action_probe(SHIPPED)


def score_video(suite_, pred, prev, actions) -> torch.Tensor:
    """action_acc per frame of pred uint8 [T, H, W, 3] through the suite -> float64 [T]."""
    out = suite_.per_frame(["action_acc"], pred, pred, actions=actions, prev=prev)
    return torch.tensor(out["action_acc"], dtype=torch.float64)


def test_frame_pairs_and_flip_closed_form():
    frames = torch.arange(1, 4, dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 2, 2, 3)
    prev = torch.zeros(2, 2, 3, dtype=torch.uint8)
    pairs = frame_pairs(frames, prev)  # [3, 2, 2, 2, 3]
    assert pairs[:, 0, 0, 0, 0].tolist() == [0, 1, 2] and pairs[:, 1, 0, 0, 0].tolist() == [1, 2, 3]
    ramp = torch.arange(4, dtype=torch.uint8).view(1, 1, 1, 4, 1).expand(3, 2, 1, 4, 3)
    actions = torch.tensor([FORWARD, LEFT, RIGHT])
    flipped, swapped = flip_pairs(ramp, actions, torch.tensor([True, True, False]))
    assert swapped.tolist() == [FORWARD, RIGHT, RIGHT]
    assert flipped[0, 0, 0, :, 0].tolist() == [3, 2, 1, 0]
    assert flipped[2, 0, 0, :, 0].tolist() == [0, 1, 2, 3]


def test_correlation_peaks_at_the_shift():
    a = torch.randn(1, 8, 6, 12, generator=torch.Generator().manual_seed(0))
    b = torch.roll(a, 2, dims=3)  # b's content sits 2 cells to the right of a's
    cost = correlation(a, b, max_shift=3)  # channels: dy in -1..1 (outer), dx in -3..3
    assert cost.shape == (1, 21, 6, 12)
    best = cost[0, :, 1:-1, 3:-3].argmax(0)  # interior cells: no padding involved
    assert (best == 7 + 3 - 2).all()  # dy = 0 row, dx = -2: b(x) matches a(x - 2)
    assert cost[0, 8, 1:-1, 3:-3].allclose(torch.ones(4, 6))


def test_task_batches_are_balanced_and_deterministic():
    actions = torch.zeros(2, 40, dtype=torch.long)
    actions[:, 10:16] = LEFT
    data = ActionData(torch.randint(0, 256, (2, 40, 8, 8, 3), dtype=torch.uint8), actions)
    task = ActionProbeTask(data, ActionProbeConfig(width=8, size=16), batch_size=32)
    pairs, act = task.batch(0, torch.Generator().manual_seed(3))
    assert pairs.shape == (32, 2, 8, 8, 3)
    assert (act != FORWARD).sum() == 16 and {LEFT, RIGHT} <= set(act.tolist())
    again = task.batch(0, torch.Generator().manual_seed(3))
    assert torch.equal(pairs, again[0]) and torch.equal(act, again[1])
    with pytest.raises(ValueError, match="turn frames"):
        ActionProbeTask(ActionData(data.video, torch.zeros_like(actions)), task.cfg, 8)


def test_action_acc_equals_direct_pairs_for_any_batching(shipped, held):
    """The suite's values equal the probe on frame_pairs, whatever batch_frames: a GT video
    whose frames read as forward and left, scored against the probe's own reading."""
    video = held.video[1]
    pairs = frame_pairs(video[1:], video[0])
    read = shipped.predict(pairs)
    assert {FORWARD, LEFT} <= set(read.tolist())
    assert action_accuracy(shipped, pairs, read).tolist() == [1.0] * len(read)
    for batch in (1, 7, 64, 1000):
        hit = score_video(suite(SHIPPED, batch), video[1:], video[0], read)
        assert hit.tolist() == [1.0] * len(read), batch
    other = (read + 1) % 3
    assert score_video(suite(SHIPPED, 7), video[1:], video[0], other).sum() == 0


def test_missing_actions_or_prev_is_a_clear_error(tmp_path):
    save_action_probe(ActionProbe(ActionProbeConfig(width=8, size=16)), tmp_path / "p")
    s = suite(tmp_path / "p")
    pred = torch.zeros(4, 16, 16, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="needs actions and prev: the ground-truth 'actions'"):
        s.per_frame(["action_acc"], pred, pred)
    with pytest.raises(ValueError, match="needs actions:"):
        s.per_frame(["action_acc"], pred, pred, prev=pred[0])
    with pytest.raises(ValueError, match=re.escape("actions (3,)")):
        s.per_frame(["action_acc"], pred, pred, actions=torch.zeros(3), prev=pred[0])
    assert s.per_frame(["psnr"], pred, pred)["psnr"]  # other metrics need neither


def test_loading_refuses_wrong_files(tmp_path):
    with pytest.raises(ValueError, match="no 'action_probe' section.*not an action probe"):
        load_action_probe("checkpoints/probe")  # the label probe
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "absent"))):
        load_action_probe(tmp_path / "absent")
    save_action_probe(ActionProbe(ActionProbeConfig(width=8)), tmp_path / "p")
    (tmp_path / "p" / "config.json").write_text('{"action_probe": {"width": 16}}')
    with pytest.raises(ValueError, match="model.safetensors"):
        load_action_probe(tmp_path / "p")
    (tmp_path / "p" / "config.json").write_text('{"action_probe": {"depth": 3}}')
    with pytest.raises(ValueError, match="bad 'action_probe' section"):
        load_action_probe(tmp_path / "p")
    (tmp_path / "p" / "config.json").write_text('{"action_probe": {"width": 8}}')
    (tmp_path / "p" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot read .*model.safetensors as safetensors"):
        load_action_probe(tmp_path / "p")


def test_shipped_probe_reads_held_out_ground_truth(shipped, held):
    """GT pairs of test seeds through the suite reach the probe's recorded held-out accuracy."""
    report = json.loads((REPO_ROOT / SHIPPED / "config.json").read_text())["report"]["held_out"]
    s = suite(SHIPPED, batch_frames=32)
    hits, acts = [], []
    for video, actions in zip(held.video, held.actions):
        hits.append(score_video(s, video[1:], video[0], actions[1:]))
        acts.append(actions[1:])
    hit, act = torch.cat(hits), torch.cat(acts)
    turn = hit[act != FORWARD].mean().item()
    forward = hit[act == FORWARD].mean().item()
    assert hit.mean().item() >= report["accuracy"] - 0.04, (hit.mean(), report)
    assert turn >= report["turn"] - 0.1 and forward >= report["forward"] - 0.04, (turn, forward)
    direct = action_scores(shipped, held)
    assert direct["accuracy"] == pytest.approx(hit.mean().item())


def test_copy_last_reads_no_turns(held):
    """Every frame = the last context frame: the probe sees no motion, so turns score <= chance."""
    video, actions = held.video[1], held.actions[1]
    start = 20  # context: frames 0..19
    pred = video[start - 1].expand(len(video) - start, -1, -1, -1)
    hit = score_video(suite(SHIPPED), pred, video[start - 1], actions[start:])
    turns = actions[start:] != FORWARD
    assert turns.sum() >= 6
    assert hit[turns].mean().item() <= 1 / 3
    assert hit[~turns].mean().item() >= 0.9  # no motion reads as a blocked forward step


@pytest.mark.parametrize("action, shift", [(LEFT, TURN_SHIFT), (RIGHT, -TURN_SHIFT)])
def test_shifted_copy_scores_the_shift(held, action, shift):
    """A video that only rolls one GT frame sideways by a turn's shift reads as that turn; the
    same video scored against the opposite turn or forward scores ~0."""
    frame = held.video[0, 10]
    pred = torch.stack([torch.roll(frame, shift * (t + 1), dims=1) for t in range(16)])
    acts = torch.full((16,), action)
    s = suite(SHIPPED, batch_frames=5)  # pairs cross batch boundaries
    assert score_video(s, pred, frame, acts).mean().item() >= 0.9
    opposite = torch.full((16,), RIGHT if action == LEFT else LEFT)
    assert score_video(s, pred, frame, opposite).mean().item() <= 0.1
    assert score_video(s, pred, frame, torch.zeros(16, dtype=torch.long)).mean().item() <= 0.1


def test_mixed_shift_sequence_known_answer_across_batches(held):
    """Rolls of +12, 0 and -12 px read as left, forward (blocked) and right frame by frame,
    with the same values for every batch size."""
    steps = [TURN_SHIFT, TURN_SHIFT, 0, -TURN_SHIFT, -TURN_SHIFT, 0, TURN_SHIFT, 0] * 2
    acts = torch.tensor([{TURN_SHIFT: LEFT, 0: FORWARD, -TURN_SHIFT: RIGHT}[s] for s in steps])
    frame = held.video[0, 10]
    offsets = torch.tensor(steps).cumsum(0).tolist()
    pred = torch.stack([torch.roll(frame, o, dims=1) for o in offsets])
    runs = [score_video(suite(SHIPPED, b), pred, frame, acts) for b in (1, 2, 3, 64)]
    assert all(torch.equal(r, runs[-1]) for r in runs)
    assert runs[-1].mean().item() >= 0.9
    # frame 0 is read from (prev, pred[0]): a left turn from `frame`, no motion from pred[0]
    assert runs[-1][0] == 1.0
    assert score_video(suite(SHIPPED, 3), pred, pred[0], acts)[0] == 0.0


def test_train_action_probe_tiny_writes_a_loadable_probe(tmp_path):
    """The shared trainer over the task, end to end on two tiny (32²) videos: files + report."""
    from millivid.evaluate.action_probe_train import train_action_probe
    from millivid.presets import PRESETS

    cfg = ActionProbeConfig(size=32, width=8, hidden=16)
    report = train_action_probe(
        tmp_path / "ap",
        PRESETS["tiny"].world,
        "tiny",
        steps=4,
        videos=2,
        frames=96,
        batch_size=8,
        device="cpu",
        probe_cfg=cfg,
        held_out_videos=1,
    )
    assert report["held_out"]["videos"] == 1 and report["steps"] == 4
    assert report["world_preset"] == "tiny" and sum(report["held_out"]["pairs"].values()) == 95
    assert 0 < report["held_out"]["majority"] < 1 and "turn" in report["held_out_blurred"]
    saved = json.loads((tmp_path / "ap" / "config.json").read_text())
    assert saved["action_probe"]["width"] == 8 and saved["report"] == report
    assert load_action_probe(tmp_path / "ap").cfg == cfg


def test_cli_action_probe_train_passes_its_flags(monkeypatch, tmp_path):
    from millivid.cli import evaluate as cli_evaluate
    from millivid.cli import main
    from millivid.presets import PRESETS

    seen = {}
    monkeypatch.setattr(
        cli_evaluate, "train_action_probe", lambda out, **kw: seen.update(kw, out=out) or {}
    )
    argv = ["evaluate", "action-probe-train", "--world-preset", "tiny", "--steps", "7"]
    assert main([*argv, "--videos", "3", "--out", str(tmp_path)]) == 0
    got = (seen["out"], seen["world"], seen["world_preset"], seen["steps"], seen["videos"])
    assert got == (tmp_path, PRESETS["tiny"].world, "tiny", 7, 3)
    assert main(argv) == 1  # --out is required


def test_action_metric_is_registered_and_its_weights_flag_reaches_the_config():
    from millivid.cli import build_parser
    from millivid.cli.evaluate import eval_config_from_args
    from millivid.evaluate.suite import DISPLAY, HIGHER_IS_BETTER, parse_metrics

    assert parse_metrics("psnr,action") == ("psnr", "action_acc")
    assert HIGHER_IS_BETTER["action_acc"] and DISPLAY["action_acc"] == "Action acc."
    assert EvalConfig().action_probe_weights == SHIPPED
    args = build_parser().parse_args(["evaluate", "--action-probe-weights", "elsewhere"])
    assert eval_config_from_args(args).action_probe_weights == "elsewhere"
