"""The SDE step of flow-GRPO rollouts and its Gaussian log-probability (ALGORITHMS.md §1).

A step s -> s' (dt = s' - s < 0) with noise scale g has mean
`mu = x + dt (v + g^2 / (2 s) (x + (1 - s) v))` and standard deviation `std = g sqrt(-dt)`; g = 0 is
the deterministic Euler (ODE) step. All arithmetic is fp32 whatever the model's dtype."""
from __future__ import annotations

import math

import torch

NOISE_KINDS = ("flow_grpo", "dance", "cps", "ode")


def noise_level(kind: str, s: float, s_second: float, a: float = 0.7, eta: float = 0.3) -> float:
    """The noise scale g at level s.

    `flow_grpo`: g = a sqrt(s / (1 - s)); at s = 1 the denominator uses the schedule's second value
    `s_second` (as Flow-GRPO does) so the first step stays finite. `dance`: the constant eta. `cps`:
    the constant eta as well (its step's std is `s' sin(eta pi / 2)`, `cps_step_mean`). `ode`: 0."""
    if kind == "ode":
        return 0.0
    if kind in ("dance", "cps"):
        return float(eta)
    if kind == "flow_grpo":
        denominator = 1.0 - (s_second if s >= 1.0 else s)
        return a * math.sqrt(s / denominator)
    raise ValueError(f"unknown noise kind {kind!r}; expected one of {', '.join(NOISE_KINDS)}")


def sde_step_mean(x: torch.Tensor, v_hat: torch.Tensor, s: float, s_next: float,
                  g: float) -> tuple[torch.Tensor, float]:
    """(mu, std) of the step s -> s_next; mu in fp32 with x's shape, std a float (0 for the ODE)."""
    if not 0.0 < s <= 1.0 or not 0.0 <= s_next < s:
        raise ValueError(f"a step runs from s in (0, 1] down to s_next in [0, s); got {s} -> {s_next}")
    x, v = x.float(), v_hat.float()
    dt = s_next - s
    drift = v + (g * g) / (2.0 * s) * (x + (1.0 - s) * v) if g > 0 else v
    return x + dt * drift, g * math.sqrt(-dt)


def gaussian_logprob(x_next: torch.Tensor, mu: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x' | mu, std^2 I) as the per-sample MEAN over all non-batch elements: shape (B,), fp32."""
    if std <= 0:
        raise ValueError("the log-prob of a deterministic (ODE, g = 0) step is undefined")
    z = (x_next.float() - mu.float()) / std
    per_element = -0.5 * z.pow(2) - math.log(std) - 0.5 * math.log(2.0 * math.pi)
    return per_element.flatten(1).mean(1)


def sde_step(x: torch.Tensor, v_hat: torch.Tensor, s: float, s_next: float, g: float,
             noise: torch.Tensor | None,
             kind: str = "flow_grpo") -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor | None]:
    """One step: (x_next, mu, std, logp). With g = 0 it is the Euler step: x_next = mu, std = 0,
    logp None, and `noise` is ignored (may be None). `kind` cps takes the CPS mean and std (g = eta)."""
    mu, std = step_mean(kind, x, v_hat, s, s_next, g)
    if g <= 0 or std <= 0:
        return mu, mu, 0.0, None
    if noise is None:
        raise ValueError("an SDE step (g > 0) needs noise")
    x_next = mu + std * noise.float()
    return x_next, mu, std, gaussian_logprob(x_next, mu, std)


def cps_step_mean(x: torch.Tensor, v_hat: torch.Tensor, s: float, s_next: float,
                  eta: float) -> tuple[torch.Tensor, float]:
    """(mu, std) of a coefficient-preserving (CPS) step s -> s_next (Wang & Yu 2025, arXiv 2509.05952).

    With the predicted clean sample `x0 = x - s v` and noise `x1 = x + (1 - s) v`, the next state keeps
    the coefficients of x_s' = (1 - s') x0 + s' eps exactly: `mu = (1 - s') x0 + sqrt(s'^2 - std^2) x1`
    and `std = s' sin(eta pi / 2)`, so the injected noise replaces part of the predicted noise instead
    of adding to it (the flow_grpo / dance SDE over-noises at large g). eta = 0 is the Euler step; at
    s' = 0 the step is deterministic (std 0) and returns x0."""
    if not 0.0 < s <= 1.0 or not 0.0 <= s_next < s:
        raise ValueError(f"a step runs from s in (0, 1] down to s_next in [0, s); got {s} -> {s_next}")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"the CPS noise level eta lies in [0, 1], got {eta}")
    x, v = x.float(), v_hat.float()
    std = s_next * math.sin(eta * math.pi / 2)
    x0, x1 = x - s * v, x + (1.0 - s) * v
    return (1.0 - s_next) * x0 + math.sqrt(max(s_next * s_next - std * std, 0.0)) * x1, std


def step_mean(kind: str, x: torch.Tensor, v_hat: torch.Tensor, s: float, s_next: float,
              level: float) -> tuple[torch.Tensor, float]:
    """(mu, std) of one rollout step of noise `kind` with the step's level (g, or eta for cps; 0 = ODE)."""
    if kind == "cps" and level > 0:
        return cps_step_mean(x, v_hat, s, s_next, level)
    return sde_step_mean(x, v_hat, s, s_next, level)
