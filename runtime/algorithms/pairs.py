"""Picking preference pairs from scored candidates (ALGORITHMS.md §10)."""
from __future__ import annotations

import torch


def best_worst(scores: torch.Tensor) -> tuple[int, int] | None:
    """Indices (best, worst) of N candidates; None on a tie (no pair)."""
    if scores.numel() < 2:
        return None
    best, worst = int(torch.argmax(scores)), int(torch.argmin(scores))
    if float(scores[best]) == float(scores[worst]):
        return None
    return best, worst


def all_pairs(scores: torch.Tensor, margin: float = 0.0) -> list[tuple[int, int]]:
    """Every (winner, loser) with a score gap above `margin`."""
    s = scores.tolist()
    return [(i, j) for i in range(len(s)) for j in range(len(s)) if s[i] - s[j] > margin]


def swap_consistent(prefers_first_ab: torch.Tensor, prefers_first_ba: torch.Tensor) -> torch.Tensor:
    """A pairwise judge asked (A, B) and (B, A): keep a verdict only when both orders agree."""
    return prefers_first_ab.bool() != prefers_first_ba.bool()
