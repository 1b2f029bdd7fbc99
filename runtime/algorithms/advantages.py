"""Group-relative advantages (ALGORITHMS.md §1)."""
from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, ddof: int = 0, eps: float = 1e-4, clip: float = 5.0,
                     global_std: bool = False) -> torch.Tensor:
    """A = (r - mean_group) / (std + eps), per row of a (num_groups, G) tensor, clipped to +-clip.

    NaN rewards are masked out (their advantage is 0); a group whose std is zero (or of one valid
    sample) gets zeros; `global_std` divides by the std over the whole batch instead."""
    r = rewards.float()
    if r.dim() == 1:
        r = r.unsqueeze(0)
    valid = ~torch.isnan(r)
    n = valid.sum(1, keepdim=True).clamp(min=1)
    filled = torch.where(valid, r, torch.zeros_like(r))
    mean = filled.sum(1, keepdim=True) / n
    centred = torch.where(valid, r - mean, torch.zeros_like(r))
    if global_std:
        count = valid.sum().clamp(min=1 + ddof)
        std = (centred.pow(2).sum() / (count - ddof)).sqrt().expand_as(mean)
    else:
        std = (centred.pow(2).sum(1, keepdim=True) / (n - ddof).clamp(min=1)).sqrt()
    adv = centred / (std + eps)
    degenerate = (n <= 1) | (std <= 0)
    adv = torch.where(degenerate | ~valid, torch.zeros_like(adv), adv)
    adv = adv.clamp(-clip, clip)
    return adv.reshape(rewards.shape)


def best_of_n_mask(advantages: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k highest and k lowest advantages of each group (a (num_groups, G) tensor)."""
    a = advantages if advantages.dim() == 2 else advantages.unsqueeze(0)
    order = a.argsort(dim=1)
    mask = torch.zeros_like(a, dtype=torch.bool)
    g = a.shape[1]
    keep = torch.cat([order[:, :min(k, g)], order[:, max(g - k, 0):]], dim=1)
    mask.scatter_(1, keep, True)
    return mask.reshape(advantages.shape)


def apply_gate(advantages: torch.Tensor, passed: torch.Tensor | None, action: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The gate acts last, on the composed advantages: `zero` sets a failing sample's advantage to 0
    (it still takes part in the loss, pulling nothing), `drop` leaves it out of the loss. Returns the
    advantages and the mask of samples kept in the loss."""
    keep = torch.ones_like(advantages, dtype=torch.bool)
    if passed is None:
        return advantages, keep
    if action == "zero":
        return torch.where(passed, advantages, torch.zeros_like(advantages)), keep
    return advantages, keep & passed
