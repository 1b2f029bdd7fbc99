"""Synthetic temporal negatives on pixel videos (F, C, H, W) (ALGORITHMS.md §10, TeleBoost §4.2)."""
from __future__ import annotations

import torch


def motion_energy(video: torch.Tensor) -> float:
    """Mean absolute frame difference (video in [-1, 1])."""
    return float((video[1:] - video[:-1]).abs().mean()) if video.shape[0] > 1 else 0.0


def reverse(video: torch.Tensor, min_motion: float = 0.02) -> torch.Tensor | None:
    """Play backwards; None for a near-static clip (its reverse is no negative)."""
    if motion_energy(video) < min_motion:
        return None
    return video.flip(0)


def shuffle_windows(video: torch.Tensor, window: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """Shuffle frames inside consecutive windows, each with probability p; at least one window changes."""
    f = video.shape[0]
    starts = list(range(0, f - 1, window))
    order = torch.arange(f)
    chosen = [s for s in starts if float(torch.rand((), generator=generator)) < p]
    if not chosen:
        chosen = [starts[int(torch.randint(len(starts), (), generator=generator))]]
    for s in chosen:
        idx = torch.arange(s, min(s + window, f))
        if idx.numel() < 2:
            continue
        perm = torch.randperm(idx.numel(), generator=generator)
        while bool((perm == torch.arange(idx.numel())).all()):
            perm = torch.randperm(idx.numel(), generator=generator)
        order[idx] = idx[perm]
    return video[order]


def freeze(video: torch.Tensor, generator: torch.Generator, min_fraction: float = 0.25,
           max_fraction: float = 0.5) -> torch.Tensor:
    """Hold one frame for 25-50% of the clip, starting in [0.25 T, 0.75 T]."""
    f = video.shape[0]
    frac = min_fraction + (max_fraction - min_fraction) * float(torch.rand((), generator=generator))
    length = max(2, int(round(frac * f)))
    lo, hi = int(0.25 * f), max(int(0.25 * f), int(0.75 * f) - 1)
    start = lo + int(torch.randint(hi - lo + 1, (), generator=generator))
    start = min(start, f - 2)
    end = min(f, start + length)
    out = video.clone()
    out[start:end] = video[start]
    return out
