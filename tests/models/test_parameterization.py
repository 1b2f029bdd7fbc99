"""Flow <-> variance-preserving conversions used by the CogVideoX adapter."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.models.parameterization import (epsilon_from_velocity, flow_velocity_from_vp, vp_coefficients,
                                             vp_timestep, x0_from_velocity)
from runtime.models.tiny import cogvideox_scheduler


@settings(max_examples=50, deadline=None)
@given(st.floats(0.01, 0.99), st.integers(0, 1000))
def test_an_exact_vp_prediction_converts_to_the_exact_flow_velocity(s, seed):
    gen = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(2, 5, generator=gen), torch.randn(2, 5, generator=gen)
    alpha, sigma, scale = vp_coefficients(torch.tensor(s))
    assert float(alpha ** 2 + sigma ** 2) == pytest.approx(1.0, abs=1e-6)
    x_s = (1 - s) * x0 + s * eps
    x_t = scale * x_s
    assert torch.allclose(x_t, alpha * x0 + sigma * eps, atol=1e-5)
    v_flow = flow_velocity_from_vp(x_t, alpha * eps - sigma * x0, alpha, sigma)
    assert torch.allclose(v_flow, eps - x0, atol=1e-4)
    s_b = torch.full((2,), s)
    assert torch.allclose(epsilon_from_velocity(x_s, eps - x0, s_b), eps, atol=1e-5)
    assert torch.allclose(x0_from_velocity(x_s, eps - x0, s_b), x0, atol=1e-5)


def test_vp_timestep_inverts_the_schedule():
    table = cogvideox_scheduler().alphas_cumprod
    t = torch.tensor([0, 1, 250, 500, 998, 999])
    ratio = torch.sqrt(table[t].double() / (1 - table[t].double()))
    s = (1 / (1 + ratio)).float()
    assert torch.allclose(vp_timestep(table, s), t.float(), atol=1e-2)
    assert float(vp_timestep(table, torch.tensor([1e-6]))) == 0.0  # cleaner than the table: clamped
    between = vp_timestep(table, s[2:4].mean().unsqueeze(0))
    assert 250 < float(between) < 500
