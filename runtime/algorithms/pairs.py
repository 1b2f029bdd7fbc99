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


def pick_pairs(scores: torch.Tensor, pick: str, margin: float = 0.0) -> list[tuple[int, int]]:
    """The (winner, loser) pairs of one prompt's N candidates: `best_worst` (none on a tie, or when
    the gap is not above `margin`) or `all_pairs` (every gap above `margin`)."""
    if pick == "all_pairs":
        return all_pairs(scores, margin)
    pair = best_worst(scores)
    if pair is None or float(scores[pair[0]] - scores[pair[1]]) <= margin:
        return []
    return [pair]


def swap_consistent(prefers_first_ab: torch.Tensor, prefers_first_ba: torch.Tensor) -> torch.Tensor:
    """A pairwise judge asked (A, B) and (B, A): keep a verdict only when both orders agree."""
    return prefers_first_ab.bool() != prefers_first_ba.bool()


def tercile_labels(scores: torch.Tensor) -> list[str]:
    """good / normal / bad for N candidates of one prompt by rank: the top third good, the bottom third
    bad (ties share their average rank, so equal scores get one label; all equal: all normal).

    Ranks r in 0..N-1 (0 = lowest): good when 3r >= 2(N-1), bad when 3r <= N-1. N = 3 gives one of
    each, N = 2 bad and good, N = 6 two of each."""
    s = scores.float().flatten()
    n = s.numel()
    if n < 2:
        return ["normal"] * n
    below = (s[None, :] < s[:, None]).sum(1).float()
    equal = (s[None, :] == s[:, None]).sum(1).float()
    rank = below + (equal - 1) / 2  # average rank among ties
    labels = []
    for r in rank.tolist():
        labels.append("good" if 3 * r >= 2 * (n - 1) else "bad" if 3 * r <= n - 1 else "normal")
    return labels
