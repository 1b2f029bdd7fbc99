"""The SDE/ODE step of ALGORITHMS.md §0-1: test vector T3, the schedule, and the step's statistics."""
from __future__ import annotations

import math

import pytest
import torch
from pytest import approx

from runtime.algorithms.schedule import shifted_sigmas
from runtime.algorithms.sde import gaussian_logprob, noise_level, sde_step, sde_step_mean

X, V, X_NEXT = torch.ones(2, 3), torch.full((2, 3), 0.5), torch.full((2, 3), 0.7)


def test_t3_flow_grpo():
    g = noise_level("flow_grpo", 0.8, 0.9, a=0.7)
    assert g == approx(1.4)
    mu, std = sde_step_mean(X, V, 0.8, 0.6, g)
    assert mu == approx(torch.full((2, 3), 0.6305)) and std == approx(0.626099, abs=1e-6)
    assert gaussian_logprob(X_NEXT, mu, std).tolist() == approx([-0.456853] * 2, abs=1e-6)


def test_t3_dance():
    g = noise_level("dance", 0.8, 0.9, eta=0.3)
    assert g == 0.3
    mu, std = sde_step_mean(X, V, 0.8, 0.6, g)
    assert mu == approx(torch.full((2, 3), 0.887625)) and std == approx(0.134164, abs=1e-6)
    assert gaussian_logprob(X_NEXT, mu, std).tolist() == approx([0.111888] * 2, abs=1e-6)


def test_sde_step_returns_the_logprob_of_the_point_it_draws():
    z = torch.tensor([[1.0, -1.0, 0.0], [0.5, 0.5, 0.5]])
    x_next, mu, std, logp = sde_step(X, V, 0.8, 0.6, 1.4, z)
    assert torch.allclose(x_next, mu + std * z)
    expected = (-0.5 * z.pow(2) - math.log(std) - 0.5 * math.log(2 * math.pi)).mean(1)
    assert torch.allclose(logp, expected)


def test_ode_step_is_euler_and_has_no_logprob():
    x_next, mu, std, logp = sde_step(X, V, 0.8, 0.6, noise_level("ode", 0.8, 0.9), None)
    assert torch.allclose(x_next, X - 0.2 * V) and torch.equal(x_next, mu)
    assert std == 0.0 and logp is None
    with pytest.raises(ValueError, match="undefined"):
        gaussian_logprob(X_NEXT, mu, std)


def test_logprob_is_a_per_sample_mean_not_a_sum():
    """Doubling the latent size must not change the log-prob: it is the mean over elements."""
    mu, std = torch.zeros(1, 4), 0.5
    small = gaussian_logprob(torch.full((1, 4), 0.3), mu, std)
    large = gaussian_logprob(torch.full((1, 8), 0.3), torch.zeros(1, 8), std)
    assert torch.allclose(small, large)
    assert float(small) == approx(-0.5 * 0.36 - math.log(0.5) - 0.5 * math.log(2 * math.pi))


def test_bf16_inputs_give_fp32_results():
    mu, std = sde_step_mean(X.bfloat16(), V.bfloat16(), 0.8, 0.6, 1.4)
    assert mu.dtype == torch.float32
    assert gaussian_logprob(X_NEXT.bfloat16(), mu, std).dtype == torch.float32


def test_flow_grpo_level_is_finite_at_s1_using_the_second_sigma():
    sig = shifted_sigmas(10, 3.0)
    assert noise_level("flow_grpo", 1.0, float(sig[1]), a=0.7) == approx(0.7 * math.sqrt(1 / (1 - float(sig[1]))))
    with pytest.raises(ValueError, match="unknown noise kind"):
        noise_level("ddim", 0.5, 0.9)


def test_sde_mean_matches_the_marginal_when_the_velocity_is_exact():
    """With the true velocity of a point mass x0, the SDE mean keeps x on the path (1-s) x0 + s eps'
    in expectation: sampling many steps from s = 1 ends at x0 for every g."""
    x0 = torch.tensor([[0.3, -0.7]])
    sig = shifted_sigmas(200, 1.0)
    gen = torch.Generator().manual_seed(0)
    for kind, level in (("ode", 0.0), ("dance", 0.3), ("flow_grpo", 0.7)):
        x = torch.randn(4096, 2, generator=gen)
        for k in range(200):
            s, s_next = float(sig[k]), float(sig[k + 1])
            v = (x - x0) / s  # exact velocity for a point-mass data distribution
            g = noise_level(kind, s, float(sig[1]), a=level, eta=level) if k < 199 else 0.0
            x, *_ = sde_step(x, v, s, s_next, g, torch.randn(x.shape, generator=gen))
        assert torch.allclose(x.mean(0), x0[0], atol=0.02), kind


def test_shifted_sigmas():
    sig = shifted_sigmas(4, 3.0)
    assert sig.shape == (5,) and float(sig[0]) == 1.0 and float(sig[-1]) == 0.0
    assert bool((sig[:-1] > sig[1:]).all())
    assert sig.tolist() == approx([1.0, 0.9, 0.75, 0.5, 0.0])  # k s / (1 + (k-1) s) at s = .75, .5, .25
    assert shifted_sigmas(4, 1.0).tolist() == approx([1.0, 0.75, 0.5, 0.25, 0.0])
    with pytest.raises(ValueError):
        shifted_sigmas(0, 3.0)


def test_step_bounds_are_checked():
    with pytest.raises(ValueError, match="step runs"):
        sde_step_mean(X, V, 0.6, 0.8, 0.3)
