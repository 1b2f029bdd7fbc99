"""Self-paced curriculum over reward components (ALGORITHMS.md §4, TaRoS).

Direction: the weights are softmax(g) exactly as specified (this reproduces test vector T11:
w = [0.492530, 0.507470]). TeleBoost intends a saturated component to hand weight to the next one. In g
that handoff comes from the sparsity term: a saturated component is dense (Hoyer S ~ 0) while the next,
still being learnt, is sparse, so beta (S_j - S_{j+1}) < 0 moves weight forward (T11: component 1 sits
at 0.8 > tau yet gets less weight). The sigmoid term alone would favour components already above tau, so
it cannot carry the handoff by itself; `saturate_below` adds an explicit one: a component whose in-group
spread is below it loses 1 from its utility.
"""
from __future__ import annotations

import math

import torch


def hoyer_sparsity(r: torch.Tensor) -> torch.Tensor:
    """(sqrt(G) - |r|_1 / |r|_2) / (sqrt(G) - 1); 0 if |r|_2 = 0 or G = 1."""
    r = r.float()
    g = r.numel()
    l2 = r.norm(2)
    if g == 1 or l2 == 0:
        return torch.tensor(0.0)
    return (math.sqrt(g) - r.abs().sum() / l2) / (math.sqrt(g) - 1)


def self_paced_weights(components: torch.Tensor, tau: float | torch.Tensor = 0.75, beta: float = 0.3,
                       saturate_below: float = 0.0) -> torch.Tensor:
    """components: (G, K) rewards of one group, ordered visual -> temporal -> semantic; returns (K,)."""
    k = components.shape[1]
    means = components.float().mean(0)
    sparsity = torch.stack([hoyer_sparsity(components[:, j]) for j in range(k)] + [torch.tensor(0.0)])
    tau = torch.as_tensor(tau, dtype=torch.float32).expand(k)
    utility = torch.sigmoid(means - tau) + beta * (sparsity[:k] - sparsity[1:])
    if saturate_below > 0:
        spread = components.float().std(0, unbiased=False)
        utility = utility - (spread < saturate_below).float()  # saturated: hand its weight on
    return torch.softmax(utility, dim=0)


def combine_components(components: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return components.float() @ weights


def group_weights(components: torch.Tensor, group_size: int, tau: float | torch.Tensor = 0.75, beta: float = 0.3,
                  saturate_below: float = 0.0) -> torch.Tensor:
    """(N, K) components of whole groups of `group_size` rollouts -> (N / group_size, K) weights."""
    return torch.stack([self_paced_weights(c, tau, beta, saturate_below) for c in components.split(group_size)])


def curriculum_reward(components: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(N, K) components and (num_groups, K) per-group weights -> (N,) sum_j w_j r_j within each group."""
    g = components.shape[0] // weights.shape[0]
    return (components.float() * weights.repeat_interleave(g, dim=0)).sum(1)
