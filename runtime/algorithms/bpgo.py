"""BPGO: trust allocation against a per-prompt prior reward (ALGORITHMS.md §3)."""
from __future__ import annotations

import math

import torch

from .flow import at_least_fp32


def crt_teleboost(r: torch.Tensor, prior: torch.Tensor | float, a: float = 50.0, tau: float = 5.0) -> torch.Tensor:
    """r~ = (a (r - prior) + [r > prior]) / (1 + exp(-r / tau)) * r, exponent clamped to +-30."""
    r = at_least_fp32(r)
    prior = torch.as_tensor(prior, dtype=r.dtype)
    gate = (r > prior).float()
    sig = 1.0 / (1.0 + torch.exp((-r / tau).clamp(-30, 30)))
    return (a * (r - prior) + gate) * sig * r


def ras_scale_teleboost(group_rewards: torch.Tensor, prior: float, alpha: float = 1.0) -> torch.Tensor:
    """Posterior of the group mean with a N(prior, 1) prior; p = P(mean > prior); w = 0.5 + p; the
    advantage multiplier is clamp(1 + alpha (w - 1), 0.01, 10)."""
    r = group_rewards.float()
    n = r.numel()
    m = r.mean()
    v = (r.var(unbiased=True) if n > 1 else torch.tensor(0.0)) + 1e-8
    pv = 1.0 / (n / v + 1.0)
    pm = pv * (n * m / v + prior)
    z = (prior - pm) / torch.sqrt(pv)
    p = 1 - 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    w = 0.5 + p
    return (1 + alpha * (w - 1)).clamp(0.01, 10.0)


def ras_weight_paper(mean_reward: float | torch.Tensor, prior: float, alpha: float = 0.5, k: float = 10.0):
    """w = 1 + alpha (2 sigmoid(k (mean_r - prior)) - 1): scales the group's GRPO loss."""
    m = torch.as_tensor(mean_reward, dtype=torch.float32)
    return 1 + alpha * (2 * torch.sigmoid(k * (m - prior)) - 1)


def crt_paper(r: torch.Tensor, prior: float, lam: float = 1.0) -> torch.Tensor:
    """r~ = (lambda (r - prior) + [r > prior]) exp(r): the second GRPO term's reward."""
    r = r.float()
    return (lam * (r - prior) + (r > prior).float()) * torch.exp(r)
