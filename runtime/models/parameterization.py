"""Conversions between the rectified-flow convention of ALGORITHMS.md §0 and the variance-preserving
(DDPM) one of the CogVideoX family, so one sampler and one set of losses serve both.

Flow: x_s = (1 - s) x0 + s eps, v = eps - x0. VP: x_t = alpha x0 + sigma eps with alpha^2 + sigma^2 = 1
and v-prediction v_vp = alpha eps - sigma x0. The two describe the same noisy point when they have the
same signal-to-noise ratio: alpha / sigma = (1 - s) / s, i.e. x_t = x_s / sqrt((1 - s)^2 + s^2)."""
from __future__ import annotations

import torch


def vp_coefficients(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(alpha, sigma, scale) for flow level s: x_t = scale * x_s, alpha = (1 - s) scale, sigma = s scale."""
    s = s.double()
    scale = 1.0 / torch.sqrt((1 - s) ** 2 + s ** 2)
    return ((1 - s) * scale).float(), (s * scale).float(), scale.float()


def flow_velocity_from_vp(x_t: torch.Tensor, v_vp: torch.Tensor, alpha: torch.Tensor,
                          sigma: torch.Tensor) -> torch.Tensor:
    """eps - x0 from a VP v-prediction: x0 = alpha x_t - sigma v_vp, eps = sigma x_t + alpha v_vp."""
    return (sigma - alpha) * x_t + (alpha + sigma) * v_vp


def vp_timestep(alphas_cumprod: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The fractional training timestep t whose alphas_cumprod equals alpha(s)^2, by linear interpolation
    in the scheduler's table (decreasing in t); clamped to [0, N - 1]. Float, shape of s."""
    alpha, _, _ = vp_coefficients(s)
    target = alpha.double() ** 2
    increasing = alphas_cumprod.double().flip(0).to(target.device)  # index j <-> t = N - 1 - j
    n = increasing.numel()
    j = torch.searchsorted(increasing, target).clamp(1, n - 1)
    lo, hi = increasing[j - 1], increasing[j]
    frac = ((target - lo) / (hi - lo).clamp(min=1e-12)).clamp(0, 1)
    return ((n - 1) - (j - 1 + frac)).float()


def epsilon_from_velocity(x_s: torch.Tensor, v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """eps = x_s + (1 - s) v: the epsilon form of a flow prediction (s broadcast per sample)."""
    s = s.float().reshape(-1, *([1] * (x_s.dim() - 1)))
    return x_s.float() + (1 - s) * v.float()


def x0_from_velocity(x_s: torch.Tensor, v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """x0 = x_s - s v (s broadcast per sample)."""
    s = s.float().reshape(-1, *([1] * (x_s.dim() - 1)))
    return x_s.float() - s * v.float()
