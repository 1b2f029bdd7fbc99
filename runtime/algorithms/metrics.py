"""Evaluation metrics and the Bradley-Terry objective (ALGORITHMS.md §10-11)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gsb(good: int, same: int, bad: int) -> dict[str, float]:
    """WinRate G/(G+B), Preference (G + S/2)/N, Margin (G - B)/N; NaN when undefined."""
    n = good + same + bad
    return {"win_rate": good / (good + bad) if good + bad else math.nan,
            "preference": (good + 0.5 * same) / n if n else math.nan,
            "margin": (good - bad) / n if n else math.nan}


def mrr(ranks: list[int]) -> float:
    return sum(1.0 / r for r in ranks) / len(ranks) if ranks else math.nan


def recall_at_k(ranks: list[int], k: int) -> float:
    return sum(r <= k for r in ranks) / len(ranks) if ranks else math.nan


def rank_with_ties(scores: list[float], target: int) -> tuple[int, int]:
    """(optimistic, pessimistic) 1-based rank of `target` among scores (higher is better)."""
    better = sum(s > scores[target] for s in scores)
    ties = sum(s == scores[target] for s in scores) - 1
    return better + 1, better + ties + 1


def bradley_terry_loss(r_a: torch.Tensor, r_b: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """P(a > b) = sigmoid(r_a - r_b); label 1 (a wins), 0 (b wins), 0.5 (tie, half a win each)."""
    logits = r_a.float() - r_b.float()
    return F.binary_cross_entropy_with_logits(logits, label.float())


def bootstrap_ci(values: torch.Tensor, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean."""
    v = values.float().flatten()
    if v.numel() < 2:
        m = float(v.mean()) if v.numel() else math.nan
        return m, m
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(v.numel(), (resamples, v.numel()), generator=g)
    means = v[idx].mean(1).sort().values
    return float(means[int(0.025 * resamples)]), float(means[min(resamples - 1, int(0.975 * resamples))])
