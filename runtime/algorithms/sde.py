"""The SDE step of flow-GRPO rollouts and its Gaussian log-probability (ALGORITHMS.md §1)."""
from __future__ import annotations

import math

import torch


def noise_level(kind: str, s: float, s_second: float, a: float = 0.7, eta: float = 0.3) -> float:
    """g(s): `flow_grpo` a*sqrt(s/(1-s)) (at s = 1 the schedule's second value in the denominator),
    `dance` a constant eta, `ode` zero."""
    if kind == "ode":
        return 0.0
    if kind == "dance":
        return eta
    if kind == "flow_grpo":
        denom = 1 - s if s < 1 else 1 - s_second
        return a * math.sqrt(s / denom)
    raise ValueError(f"unknown noise kind {kind!r}")


def sde_step_mean(x: torch.Tensor, v_hat: torch.Tensor, s: float, s_next: float, g: float):
    """mu = x + dt (v + g^2/(2s) (x + (1-s) v)), std = g sqrt(-dt); fp32."""
    x, v = x.float(), v_hat.float()
    dt = s_next - s
    mu = x + dt * (v + (g * g) / (2 * s) * (x + (1 - s) * v)) if g > 0 else x + dt * v
    std = g * math.sqrt(-dt)
    return mu, std


def gaussian_logprob(x_next: torch.Tensor, mu: torch.Tensor, std: float) -> torch.Tensor:
    """Per-sample MEAN over latent elements of log N(x' | mu, std^2): shape (B,)."""
    if std <= 0:
        raise ValueError("log-prob of a deterministic (ODE) step is undefined")
    z = (x_next.float() - mu) / std
    return (-0.5 * z.pow(2) - math.log(std) - 0.5 * math.log(2 * math.pi)).flatten(1).mean(1)


def sde_step(x: torch.Tensor, v_hat: torch.Tensor, s: float, s_next: float, g: float,
             noise: torch.Tensor | None):
    """One step; returns (x_next, mu, std, logp or None for g = 0)."""
    mu, std = sde_step_mean(x, v_hat, s, s_next, g)
    if g <= 0:
        return mu, mu, 0.0, None
    x_next = mu + std * noise.float()
    return x_next, mu, std, gaussian_logprob(x_next, mu, std)
