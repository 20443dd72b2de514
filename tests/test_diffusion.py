import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.diffusion import (
    LOGSNR_MAX,
    LOGSNR_MIN,
    DiffusionConfig,
    Schedule,
    alpha_sigma,
    ddim_sample,
    ddim_step,
    ddim_times,
    diffuse,
    eps_from_v,
    guided,
    guided_velocity,
    logsnr,
    v_from_x0,
    v_from_x0_eps,
    x0_from_v,
)

times = st.floats(0.0, 1.0, allow_nan=False)
shifts = st.floats(0.25, 8.0, allow_nan=False)


@given(t=times, shift=shifts)
def test_alpha_squared_plus_sigma_squared_is_one(t, shift):
    a, s = alpha_sigma(logsnr(torch.tensor([t], dtype=torch.float64), shift))
    assert torch.allclose(a**2 + s**2, torch.ones(1, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("shift", [1.0, 0.5, 2.0, 4.0])
def test_logsnr_endpoints_are_the_documented_clip(shift):
    lam = logsnr(torch.tensor([0.0, 1.0], dtype=torch.float64), shift)
    expected = torch.tensor([LOGSNR_MAX, LOGSNR_MIN], dtype=torch.float64) - 2 * math.log(shift)
    assert torch.allclose(lam, expected, atol=1e-9)
    assert torch.isfinite(lam).all()


def test_logsnr_is_the_cosine_schedule_in_the_middle():
    # unshifted cosine: logsnr(1/2) = -2 log tan(pi/4) = 0 (the clip is symmetric)
    assert abs(float(logsnr(torch.tensor([0.5], dtype=torch.float64)))) < 1e-9
    # shift multiplies sigma/alpha by `shift`
    t = torch.tensor([0.3], dtype=torch.float64)
    a1, s1 = alpha_sigma(logsnr(t, 1.0))
    a2, s2 = alpha_sigma(logsnr(t, 3.0))
    assert torch.allclose(s2 / a2, 3.0 * s1 / a1, rtol=1e-9)


def test_logsnr_decreases_in_time():
    lam = logsnr(torch.linspace(0, 1, 101, dtype=torch.float64))
    assert (lam[1:] < lam[:-1]).all()


@settings(max_examples=50, deadline=None)
@given(t=times, seed=st.integers(0, 2**31 - 1))
def test_v_x0_eps_round_trip(t, seed):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    eps = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    a, s = alpha_sigma(logsnr(torch.tensor(t, dtype=torch.float64)))
    z = diffuse(x0, eps, a, s)
    v = v_from_x0_eps(x0, eps, a, s)
    assert torch.allclose(x0_from_v(z, v, a, s), x0, atol=1e-9)
    assert torch.allclose(eps_from_v(z, v, a, s), eps, atol=1e-9)
    if s > 1e-6:
        assert torch.allclose(v_from_x0(z, x0, a, s), v, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 4, 50])
@pytest.mark.parametrize("shift", [1.0, 2.0])
def test_ddim_with_exact_x0_predictor_recovers_x0(steps, shift):
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64)
    noise = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64)
    calls = []

    def oracle(z, t):
        calls.append(t)
        a, s = alpha_sigma(logsnr(t.double(), shift))
        a, s = a.view(-1, 1, 1), s.view(-1, 1, 1)
        return v_from_x0(z, x0, a, s)

    out = ddim_sample(oracle, noise, ddim_times(steps), Schedule(shift))
    assert len(calls) == steps
    assert torch.allclose(out, x0, atol=1e-8)


def test_ddim_follows_the_time_grid_it_is_given():
    gen = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(2, 5, generator=gen), torch.randn(2, 5, generator=gen)
    calls = []

    def oracle(z, t):
        calls.append(float(t[0]))
        a, s = alpha_sigma(logsnr(t.double()))
        return v_from_x0(z, x0, a.view(-1, 1).float(), s.view(-1, 1).float())

    grid = torch.tensor([1.0, 0.9, 0.4, 0.0], dtype=torch.float64)
    out = ddim_sample(oracle, noise, grid)
    assert calls == pytest.approx([1.0, 0.9, 0.4])  # one step per interval, no t = 0 call
    assert torch.allclose(out, x0, atol=1e-4)
    with pytest.raises(ValueError, match="time grid"):
        ddim_sample(oracle, noise, torch.ones(1, dtype=torch.float64))


@given(lam_from=st.floats(-15.0, 15.0), lam_to=st.floats(-15.0, 15.0))
@settings(max_examples=30, deadline=None)
def test_ddim_step_with_one_scalar_log_snr_equals_per_element(lam_from, lam_to):
    # the sampler passes 0-d CPU scalars (no host-to-device copy); the result must not change
    gen = torch.Generator().manual_seed(0)
    z, v = torch.randn(2, 2, 5, 3, generator=gen), torch.randn(2, 2, 5, 3, generator=gen)
    scalar_from, scalar_to = torch.tensor(lam_from), torch.tensor(lam_to)
    per_element = ddim_step(z, v, scalar_from.expand(2), scalar_to.expand(2))
    scalar = ddim_step(z, v, scalar_from, scalar_to)
    assert scalar.dtype == z.dtype
    assert torch.allclose(scalar, per_element, atol=1e-6)
    final = ddim_step(z, v, scalar_from, None)
    assert torch.allclose(final, ddim_step(z, v, scalar_from.expand(2), None), atol=1e-6)


@given(lam_from=st.floats(-12.0, 12.0), gap=st.floats(0.1, 10.0))
@settings(max_examples=40, deadline=None)
def test_ddim_with_eta_one_is_the_ddpm_posterior_step(lam_from, gap):
    """eta = 1: mean and standard deviation of the step are those of q(z_s | z_t, x0) with the
    model's x0 (Ho et al.; written independently of the DDIM form here); eta = 0 ignores the fresh
    noise and is the deterministic step."""
    gen = torch.Generator().manual_seed(0)
    z, v = torch.randn(3, 4, generator=gen).double(), torch.randn(3, 4, generator=gen).double()
    lf, lt = torch.tensor(lam_from).double(), torch.tensor(lam_from + gap).double()
    a, s = alpha_sigma(lf)
    a2, s2 = alpha_sigma(lt)
    x0 = x0_from_v(z, v, a, s)
    a_ts = a / a2  # q(z_t | z_s) = N(a_ts z_s, var_ts)
    var_ts = s**2 - a_ts**2 * s2**2
    mean = a_ts * s2**2 / s**2 * z + a2 * var_ts / s**2 * x0
    std = (var_ts * s2**2 / s**2).sqrt()
    zeros, ones = torch.zeros_like(z), torch.ones_like(z)
    assert torch.allclose(ddim_step(z, v, lf, lt, eta=1.0, fresh=zeros), mean, atol=1e-9)
    shifted = ddim_step(z, v, lf, lt, eta=1.0, fresh=ones) - mean
    assert torch.allclose(shifted, std.expand_as(z), atol=1e-9)
    assert torch.equal(ddim_step(z, v, lf, lt, eta=0.0, fresh=ones), ddim_step(z, v, lf, lt))
    half = ddim_step(z, v, lf, lt, eta=0.5, fresh=ones) - ddim_step(z, v, lf, lt, 0.5, zeros)
    assert torch.allclose(half, 0.5 * std.expand_as(z), atol=1e-9)


def test_stochastic_ddim_keeps_every_marginal_and_ends_at_the_clean_estimate():
    """Data = one point: with the exact predictor every step's z is N(alpha x*, sigma^2) for any
    eta (the fresh noise replaces part of the carried noise), and the last step returns x*."""
    x_star = torch.tensor([0.7, -1.3], dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    noise = torch.randn(40_000, 2, generator=gen, dtype=torch.float64)
    seen = []

    def oracle(z, t):
        a, s = alpha_sigma(logsnr(t.double()))
        a, s = a.view(-1, 1), s.view(-1, 1)
        seen.append((z, float(a[0]), float(s[0])))
        return v_from_x0(z, x_star.expand_as(z), a, s)

    def fresh():
        return torch.randn(40_000, 2, generator=gen, dtype=torch.float64)

    out = ddim_sample(oracle, noise, ddim_times(6), eta=1.0, fresh_noise=fresh)
    assert torch.allclose(out, x_star.expand_as(out), atol=1e-9)
    for z, a, s in seen[1:]:  # the first is the starting noise
        assert torch.allclose(z.mean(0), a * x_star, atol=4 * s / 200)
        assert z.std(0) == pytest.approx([s, s], rel=0.03)
    with pytest.raises(ValueError, match="fresh_noise"):
        ddim_sample(oracle, noise, ddim_times(2), eta=0.5)
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(oracle, noise, ddim_times(2), eta=1.5, fresh_noise=fresh)


def test_ddim_times_are_equally_spaced_from_noise_to_clean():
    t = ddim_times(50)
    assert t[0] == 1.0 and t[-1] == 0.0 and len(t) == 51
    assert torch.allclose(t[:-1] - t[1:], torch.full((50,), 0.02, dtype=torch.float64))
    with pytest.raises(ValueError, match="sample_steps"):
        ddim_times(0)


def test_ddim_with_zero_noise_prediction_deterministic_rescale():
    # eps-prediction == z everywhere means x0 estimate 0: the sampler must return ~0
    noise = torch.randn(1, 4, dtype=torch.float64)

    def predict_eps_is_z(z, t):
        a, s = alpha_sigma(logsnr(t.double()))
        return v_from_x0(z, torch.zeros_like(z), a.view(-1, 1), s.view(-1, 1))

    assert torch.allclose(
        ddim_sample(predict_eps_is_z, noise, ddim_times(10)), torch.zeros(1, 4).double()
    )


def test_cfg_scale_one_skips_the_unconditional_branch():
    def cond(z, t):
        return z + 1

    def uncond(z, t):
        raise AssertionError("unconditional branch evaluated at scale 1")

    z = torch.zeros(2, 3)
    assert torch.equal(guided_velocity(cond, uncond, 1.0)(z, torch.zeros(2)), z + 1)
    both = guided_velocity(cond, lambda z, t: z - 1, 1.5)
    assert torch.allclose(both(z, torch.zeros(2)), torch.full((2, 3), 2.0))
    assert torch.allclose(guided(torch.ones(1), torch.zeros(1), 1.5), torch.tensor([1.5]))


def test_a_schedule_object_is_the_shifted_formulas_and_checks_its_shift():
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    a, s = Schedule(2.0).alpha_sigma(t)
    ea, es = alpha_sigma(logsnr(t, 2.0))
    assert torch.equal(a, ea) and torch.equal(s, es)
    assert DiffusionConfig(shift=3.0).schedule == Schedule(3.0)
    with pytest.raises(ValueError, match="diffusion.shift = 0"):
        Schedule(0.0)
