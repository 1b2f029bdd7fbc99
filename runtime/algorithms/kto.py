"""Diffusion-KTO (ALGORITHMS.md §8)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def kto_reference_point(implicit_reward: torch.Tensor,
                        all_reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """KL = clamp(mean over the (global) batch of g, min=0), detached. With torch.distributed
    initialised and no callable given, the mean is all-reduced across ranks."""
    g = implicit_reward.detach().float()
    local = torch.stack([g.sum(), torch.tensor(float(g.numel()), device=g.device)])
    if all_reduce_mean is not None:
        mean = all_reduce_mean(g.mean())
    else:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(local)
        mean = local[0] / local[1].clamp(min=1)
    return mean.clamp(min=0)


def kto_loss(e_theta: torch.Tensor, e_ref: torch.Tensor, desirable: torch.Tensor, beta: float,
             utility: str = "sigmoid", lambda_desirable: float = 1.0, lambda_undesirable: float = 1.0,
             reference_point: torch.Tensor | None = None) -> torch.Tensor:
    """g = e_ref - e_theta; z = (2y - 1) beta (g - KL); L = mean(lambda_y (1 - h(z))), h = sigmoid or
    log sigmoid (loss-averse)."""
    g = e_ref.float() - e_theta.float()
    kl = kto_reference_point(g) if reference_point is None else reference_point
    y = desirable.float()
    z = (2 * y - 1) * beta * (g - kl)
    h = torch.sigmoid(z) if utility == "sigmoid" else F.logsigmoid(z)
    lam = torch.where(y > 0.5, torch.full_like(y, lambda_desirable), torch.full_like(y, lambda_undesirable))
    return (lam * (1 - h)).mean()
