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


def paired_difference(ours: torch.Tensor, theirs: torch.Tensor, resamples: int = 1000, seed: int = 0) -> dict:
    """Ours minus theirs, scored on the same samples (same prompt, same noise): the mean difference, its
    bootstrap 95% interval, the paired t statistic and a two-sided sign-flip permutation p-value (under
    "no difference" each pair's sign is a coin flip; +1 in numerator and denominator keeps p > 0)."""
    d = ours.float().flatten() - theirs.float().flatten()
    n = d.numel()
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        t = math.nan  # one pair has no spread to measure against
    else:
        sd = float(d.std())
        t = mean / (sd / math.sqrt(n)) if sd > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    g = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (resamples, n), generator=g).float() * 2 - 1
    extreme = int(((signs * d).mean(1).abs() >= abs(mean) - 1e-12).sum()) if n else resamples
    lo, hi = bootstrap_ci(d, resamples, seed)
    return {"mean": mean, "ci95": [lo, hi], "t": t, "p": (extreme + 1) / (resamples + 1), "n": n}
