"""Sampling from s = 1 to 0: the ODE for evaluation, the SDE with per-step log-probs for GRPO rollouts."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from runtime.algorithms.flow import shifted_sigmas
from runtime.algorithms.sde import noise_level, sde_step, sde_step_mean, gaussian_logprob

from .policy import TextCond, VideoPolicy


@dataclass
class Trajectory:
    states: list[torch.Tensor]  # T+1 latents, fp32, states[0] the initial noise
    logps: torch.Tensor | None  # (B, T) per-step log-probs (SDE only)
    mus: list[torch.Tensor]  # T step means (ViPO recomputes per-position log-probs from them)
    sigmas: torch.Tensor  # (T+1,)
    levels: list[float]  # g per step

    @property
    def final(self) -> torch.Tensor:
        return self.states[-1]


def guided_velocity(policy: VideoPolicy, x: torch.Tensor, s: float, text: TextCond, uncond: TextCond | None,
                    guidance: float, transformer=None) -> torch.Tensor:
    sigma = torch.full((x.shape[0],), s, device=x.device)
    v = policy.velocity(x, sigma, text, transformer)
    if uncond is not None and guidance != 1.0:
        v_u = policy.velocity(x, sigma, uncond, transformer)
        v = v_u + guidance * (v - v_u)
    return v


@torch.no_grad()
def sample(policy: VideoPolicy, text: TextCond, noise: torch.Tensor, steps: int, noise_kind: str = "ode",
           level: float = 0.7, generator: torch.Generator | None = None, guidance: float = 1.0,
           uncond: TextCond | None = None, transformer=None) -> Trajectory:
    sig = shifted_sigmas(steps, policy.spec.get("shift", 1.0))
    x = noise.float()
    states, logps, levels, mus = [x], [], [], []
    for k in range(steps):
        s, s_next = float(sig[k]), float(sig[k + 1])
        g = 0.0 if noise_kind == "ode" or k == steps - 1 else noise_level(noise_kind, s, float(sig[1]), a=level, eta=level)
        v = guided_velocity(policy, x, s, text, uncond, guidance, transformer)
        z = torch.randn(x.shape, generator=generator, device="cpu").to(x.device) if g > 0 else None
        x, mu, _, logp = sde_step(x, v, s, s_next, g, z)
        states.append(x)
        mus.append(mu)
        levels.append(g)
        logps.append(logp if logp is not None else torch.zeros(x.shape[0], device=x.device))
    stacked = torch.stack(logps, 1) if noise_kind != "ode" else None
    return Trajectory(states, stacked, mus, sig, levels)


def step_logprob(policy: VideoPolicy, text: TextCond, x: torch.Tensor, x_next: torch.Tensor, s: float, s_next: float,
                 g: float, uncond: TextCond | None = None, guidance: float = 1.0, transformer=None):
    """Recompute one stored step under the current weights: (per-sample logp, mu) with gradients."""
    v = guided_velocity(policy, x, s, text, uncond, guidance, transformer)
    mu, std = sde_step_mean(x, v, s, s_next, g)
    return gaussian_logprob(x_next, mu, std), mu
