"""Flow-RWR weights and Flow-NRG guidance (ALGORITHMS.md §9)."""
from __future__ import annotations

import torch


def rwr_weights(rewards: torch.Tensor, tau: float = 1.0, clip: float | None = None) -> torch.Tensor:
    """w_i = exp((r_i - max r) / tau), normalised to mean 1, optionally clipped (then renormalised)."""
    r = rewards.float()
    w = torch.exp((r - r.max()) / tau)
    w = w / w.mean()
    if clip is not None:
        w = w.clamp(max=clip)
        w = w / w.mean()
    return w


def nrg_velocity(v: torch.Tensor, s: torch.Tensor | float, weight: float, grad_reward: torch.Tensor,
                 clamp: float = 10.0) -> torch.Tensor:
    """v~ = v - w * s/(1-s) * grad_x r(x_s, s); the factor s/(1-s) is capped at `clamp` near s = 1."""
    s = torch.as_tensor(s, dtype=torch.float32)
    factor = (s / (1 - s).clamp(min=1e-6)).clamp(max=clamp)
    if factor.dim() == 1:
        factor = factor.reshape(-1, *([1] * (v.dim() - 1)))
    return v.float() - weight * factor * grad_reward.float()
