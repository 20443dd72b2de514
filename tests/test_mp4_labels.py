"""The labelled side-by-side video: size, captions, context/generated marker, mp4 round trip."""

from __future__ import annotations

import numpy as np
import pytest

from millivid.data.mp4 import (
    CONTEXT_RGB,
    GENERATED_RGB,
    comparison_frames,
    read_mp4,
    text_mask,
    write_mp4,
)

T, CONTEXT = 10, 6


def videos(h=32, w=32):
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (T, h, w, 3), dtype=np.uint8)
    video = np.concatenate([truth[:CONTEXT], 255 - truth[CONTEXT:]])
    return truth, video


def test_panels_are_upscaled_captioned_and_sized():
    truth, video = videos()
    frames = list(comparison_frames(video, CONTEXT, "millivid", truth))
    assert len(frames) == T
    # 32 px -> x8 = 256 px panels, 4 px borders and gaps, 30 px caption and status strips
    assert frames[0].shape == (30 + 264 + 30, 4 + 2 * (264 + 4), 3)
    f = frames[7]
    left = f[34 : 34 + 256, 8 : 8 + 256]  # inside the first panel's border
    right = f[34 : 34 + 256, 8 + 268 : 8 + 268 + 256]
    assert (left == truth[7].repeat(8, 0).repeat(8, 1)).all()  # nearest neighbour
    assert (right == video[7].repeat(8, 0).repeat(8, 1)).all()
    ink = text_mask("ground truth", 2)  # the caption, centred over the first panel
    x = 4 + (264 - ink.shape[1]) // 2
    assert (f[6 : 6 + ink.shape[0], x : x + ink.shape[1]][ink] == 235).all()
    assert (f[6 : 6 + ink.shape[0], x : x + ink.shape[1]][~ink] == 24).all()
    single = next(comparison_frames(video, CONTEXT, "millivid"))
    assert single.shape == (324, 272, 3)  # no ground truth: one panel


def test_marker_and_counter_differ_between_context_and_generated_frames():
    truth, video = videos()
    frames = list(comparison_frames(video, CONTEXT, "millivid", truth))
    border = (slice(32, 34), slice(4 + 268, 4 + 268 + 264))  # top border of the second panel
    last_context, first_generated = frames[CONTEXT - 1], frames[CONTEXT]
    assert (last_context[border] == CONTEXT_RGB).all()
    assert (first_generated[border] == GENERATED_RGB).all()
    assert (frames[0][32:34, 4:268] == frames[-1][32:34, 4:268]).all()  # ground truth: unmarked
    status = (slice(294, 324), slice(0, 540))
    assert (last_context[status] == CONTEXT_RGB).all(-1).sum() > 100  # "frame 6 / 10, context"
    assert (first_generated[status] == GENERATED_RGB).all(-1).sum() > 100  # "..., generated 1"
    ink = text_mask(f"frame 7 / {T}, generated 1", 2)
    text = first_generated[300 : 300 + ink.shape[0], 4 : 4 + ink.shape[1]]
    assert (text[ink] == GENERATED_RGB).all() and (text[~ink] == 24).all()


def test_labelled_mp4_round_trip(tmp_path):
    truth, video = videos()
    path = tmp_path / "side.mp4"
    write_mp4(path, comparison_frames(video, CONTEXT, "millivid", truth))
    back = read_mp4(path)
    assert back.shape == (T, 324, 540, 3)
    border = back[:, 32:34, 4 + 268 + 8 : 4 + 268 + 256].astype(float).mean((1, 2))
    assert np.abs(border[:CONTEXT] - CONTEXT_RGB).max() < 30  # lossy H.264: close, not exact
    assert np.abs(border[CONTEXT:] - GENERATED_RGB).max() < 30
    assert [p.name for p in tmp_path.iterdir()] == ["side.mp4"]


def test_write_mp4_from_frames_of_changing_size_writes_nothing(tmp_path):
    def frames():
        yield np.zeros((8, 8, 3), np.uint8)
        yield np.zeros((8, 10, 3), np.uint8)

    with pytest.raises(ValueError, match="frames of one size"):
        write_mp4(tmp_path / "x.mp4", frames())
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="at least one frame"):
        write_mp4(tmp_path / "x.mp4", iter([]))


def test_comparison_needs_matching_shapes():
    truth, video = videos()
    with pytest.raises(ValueError, match="same shape"):
        next(comparison_frames(video, CONTEXT, "millivid", truth[:, :16]))
