"""Held-out likelihood probes shared by the preference-learning tests."""
from __future__ import annotations

import torch

from runtime.algorithms import flow


def mean_flow_errors(policy, x0: torch.Tensor, text, draws: int = 4, seed: int = 5) -> torch.Tensor:
    """Per video: the flow-matching error averaged over `draws` noises and timesteps drawn from `seed`.
    Every call with the same seed and shape draws the same ones, so two calls compare models or videos
    under shared noise (differences of these means are paired per draw)."""
    g = torch.Generator().manual_seed(seed)
    total = torch.zeros(x0.shape[0])
    for _ in range(draws):
        eps, s = torch.randn(x0.shape, generator=g), flow.sample_sigmas(x0.shape[0], g)
        with torch.no_grad():
            total += flow.flow_matching_error(policy.velocity(flow.noised(x0, eps, s), s, text), x0, eps)
    return total / draws
