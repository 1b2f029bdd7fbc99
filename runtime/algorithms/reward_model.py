"""Reward-model objectives (ALGORITHMS.md §10; VideoAlign, IPO): per-head Bradley-Terry on pairs with
ties as half a win, and a pointwise head loss on labels on the same logit scale."""
from __future__ import annotations

import torch
import torch.nn.functional as F

VERDICTS = {"chosen": 1.0, "rejected": 0.0, "tie": 0.5, "same": 0.5, "a": 1.0, "b": 0.0}
LABEL_TARGETS = {"good": 1.0, "normal": 0.5, "bad": 0.0}


def verdict_target(value, tie: bool) -> float:
    """P(chosen beats rejected) for one head: a per-dimension verdict (chosen / rejected / tie, A / B /
    same, or a probability in [0, 1]); absent, the pair's own verdict (1, or 0.5 for a tie)."""
    if value is None:
        return 0.5 if tie else 1.0
    if isinstance(value, str) and value.strip().lower() in VERDICTS:
        return VERDICTS[value.strip().lower()]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
        return float(value)
    raise ValueError(f"a per-dimension verdict is chosen, rejected, tie (or A, B, same) or a probability, got {value!r}")


def pairwise_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, target: torch.Tensor,
                  ties: bool = True) -> torch.Tensor:
    """Bradley-Terry per head: -[t log sigmoid(d) + (1 - t) log sigmoid(-d)], d = r_chosen - r_rejected,
    averaged over pairs and heads (all (N, H)). Without `ties`, pairs with t = 0.5 carry no loss."""
    d = r_chosen.float() - r_rejected.float()
    losses = F.binary_cross_entropy_with_logits(d, target.float(), reduction="none")
    if ties:
        return losses.mean()
    keep = (target != 0.5).float()
    return (losses * keep).sum() / keep.sum().clamp(min=1)


def label_targets(labels: list) -> torch.Tensor:
    """Pointwise targets in [0, 1]: good 1, normal 0.5, bad 0; numeric scores min-max scaled over the set."""
    numeric = [float(y) for y in labels if not isinstance(y, str)]
    lo, hi = (min(numeric), max(numeric)) if numeric else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    return torch.tensor([LABEL_TARGETS[y] if isinstance(y, str) else (float(y) - lo) / span for y in labels])


def pointwise_loss(r: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sigmoid(r) read as the chance the video beats a neutral one (r = 0): cross-entropy to the target,
    so labels and pairs train one scale. r (N, H), target (N,) or (N, H)."""
    t = target.float()
    if t.dim() == 1:
        t = t[:, None].expand_as(r)
    return F.binary_cross_entropy_with_logits(r.float(), t)


def pair_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor, target: torch.Tensor) -> float:
    """Share of decided (target != 0.5) head verdicts the model ranks the same way; NaN if none."""
    decided = target != 0.5
    if not bool(decided.any()):
        return float("nan")
    right = ((r_chosen > r_rejected) == (target > 0.5)) & decided
    return float(right.sum() / decided.sum())
