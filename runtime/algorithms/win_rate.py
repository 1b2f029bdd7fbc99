"""Pref-GRPO (arXiv 2508.20751): a rollout's reward is its win rate against the rest of its group.

Pointwise scores that differ by little are stretched by the group z-score into large advantages
(Pref-GRPO's "illusory advantage"); a win rate only counts who beats whom, so a tiny score gap moves
an advantage no more than a large one does."""
from __future__ import annotations

import torch


def win_rates(preference: torch.Tensor) -> torch.Tensor:
    """(num_groups, G, G) P[i, j] = probability that rollout i beats rollout j (P[i, j] + P[j, i] = 1;
    the diagonal is ignored) -> (num_groups, G) win rates `sum_{j != i} P[i, j] / (G - 1)`. A group of
    one gets 0.5."""
    p = preference.float()
    if p.dim() == 2:
        p = p.unsqueeze(0)
    g = p.shape[-1]
    if g < 2:
        return torch.full(p.shape[:-1], 0.5)
    off = ~torch.eye(g, dtype=torch.bool)
    return torch.where(off, p, torch.zeros_like(p)).sum(-1) / (g - 1)


def score_preferences(scores: torch.Tensor) -> torch.Tensor:
    """(num_groups, G) pointwise scores -> (num_groups, G, G) preferences: 1 where i scores higher, 0.5
    for equal scores, 0 where lower. NaN scores (a failed reward) lose to every number and tie each other."""
    r = scores.float()
    r = torch.where(torch.isnan(r), torch.full_like(r, float("-inf")), r)
    a, b = r.unsqueeze(-1), r.unsqueeze(-2)
    return (a > b).float() + 0.5 * (a == b).float()


def judged_preferences(p_ab: torch.Tensor, p_ab_swapped: torch.Tensor) -> torch.Tensor:
    """A pairwise judge's verdicts on the pairs (i, j), i < j, of one group, asked as (i, j) and as
    (j, i) (ALGORITHMS.md §10's swap), in `torch.combinations` order -> the (G, G) preference matrix:
    P[i, j] the mean of the two answers' P(i better), P[j, i] = 1 - P[i, j] (position bias cancels)."""
    n = p_ab.numel()
    g = int(round((1 + (1 + 8 * n) ** 0.5) / 2))
    if g * (g - 1) // 2 != n:
        raise ValueError(f"{n} verdicts are not the pairs of one group")
    pairs = torch.combinations(torch.arange(g), 2)
    p = 0.5 * (p_ab.float() + p_ab_swapped.float())
    out = torch.full((g, g), 0.5)
    out[pairs[:, 0], pairs[:, 1]] = p
    out[pairs[:, 1], pairs[:, 0]] = 1 - p
    return out
