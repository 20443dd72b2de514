import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.autoencoder.model import level_grid
from millivid.nn import block_centre, count_parameters, modulate, sincos


@settings(deadline=None, max_examples=30)
@given(pos=st.floats(-1e4, 1e4, allow_nan=False), half=st.integers(1, 64))
def test_sincos_is_sin_then_cos_of_geometric_frequencies(pos, half):
    feats = sincos(torch.tensor([pos], dtype=torch.float64), 2 * half)[0].double()
    freqs = [10_000.0 ** (-i / half) for i in range(half)]
    # float32 angles: the error grows with the angle, |pos| * 2^-23 at the first frequency
    tol = 1e-6 * (1 + abs(pos))
    for i, f in enumerate(freqs):
        assert abs(feats[i] - math.sin(pos * f)) < tol
        assert abs(feats[half + i] - math.cos(pos * f)) < tol


def test_sincos_keeps_leading_dims_and_is_float32():
    pos = torch.arange(6, dtype=torch.int64).reshape(2, 3)
    out = sincos(pos, 8, base=100.0)
    assert out.shape == (2, 3, 8) and out.dtype == torch.float32
    torch.testing.assert_close(out[..., :4] ** 2 + out[..., 4:] ** 2, torch.ones(2, 3, 4))
    torch.testing.assert_close(out[0, 0], torch.tensor([0.0] * 4 + [1.0] * 4))


def test_block_centre_is_the_mean_of_the_level0_cells_it_covers():
    for level in range(4):
        index = torch.arange(5)
        cells = index[:, None] * 2**level + torch.arange(2**level)  # level-0 cells covered
        expected = cells.float().mean(dim=1)
        assert torch.equal(block_centre(index, torch.full_like(index, level)), expected)


def test_autoencoder_token_positions_are_block_centres_of_the_pyramid():
    rows0, cols0 = level_grid(8, 0)
    for level in (1, 2):
        rows, cols = level_grid(8, level)
        pooled = [F.avg_pool2d(p.reshape(1, 8, 8), 2**level).reshape(-1) for p in (rows0, cols0)]
        assert torch.equal(rows, pooled[0]) and torch.equal(cols, pooled[1])


def test_modulate_is_identity_at_zero_and_scales_then_shifts():
    x = torch.randn(2, 5, 4)
    zero = torch.zeros(2, 1, 4)
    assert torch.equal(modulate(x, zero, zero), x)  # adaLN-Zero starts as the identity
    assert torch.equal(modulate(x, 0.0, 0.0), x)
    shift, scale = torch.randn(2, 1, 4), torch.randn(2, 1, 4)
    torch.testing.assert_close(modulate(x, shift, scale), x + x * scale + shift)


def test_count_parameters_counts_frozen_parameters_unless_asked_for_trainable_ones():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2, bias=False))
    assert count_parameters(model) == 3 * 4 + 4 + 4 * 2
    model[0].requires_grad_(False)
    assert count_parameters(model) == 24
    assert count_parameters(model, trainable=True) == 8
