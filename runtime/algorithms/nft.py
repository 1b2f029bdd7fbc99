"""DiffusionNFT (Zheng et al. 2025, arXiv 2509.16117): online RL on the forward process.

No trajectory log-probs: the rollouts' clean samples x0 (from any solver, the ODE by default) are
noised again, `x_s = (1 - s) x0 + s eps`, and the policy is trained by flow matching towards an
implicit positive policy on good samples and away through an implicit negative one on bad samples:

    v+ = beta v_theta + (1 - beta) v_old,   v- = (1 + beta) v_old - beta v_theta
    L  = [ r ||x0(v+) - x0||^2 / w+  +  (1 - r) ||x0(v-) - x0||^2 / w- ] / beta,   x0(v) = x_s - s v

v_old the sampling policy's velocity (no gradient), r in [0, 1] the optimality probability of the
sample, w the paper's adaptive weight (the mean absolute x0 error, detached). CFG-free: the policy is
trained and sampled without guidance."""
from __future__ import annotations

import torch


def optimality_probability(advantages: torch.Tensor, adv_clip: float) -> torch.Tensor:
    """r = clip(A / A_max, -1, 1) / 2 + 1/2: the group advantage mapped to [0, 1] (A = 0 -> 1/2)."""
    return (advantages.float() / adv_clip).clamp(-1.0, 1.0) / 2 + 0.5


def nft_loss(v_new: torch.Tensor, v_old: torch.Tensor, x_s: torch.Tensor, x0: torch.Tensor, s: torch.Tensor,
             r: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-sample DiffusionNFT loss, (B,). `s` (B,) the noise level of each row's x_s, `r` (B,)."""
    if beta <= 0:
        raise ValueError("DiffusionNFT's beta is positive")
    shape = (-1,) + (1,) * (x_s.dim() - 1)
    level = s.float().view(shape)
    v_new, v_old, x_s, x0 = v_new.float(), v_old.float().detach(), x_s.float(), x0.float()
    positive = x_s - level * (beta * v_new + (1 - beta) * v_old)
    negative = x_s - level * ((1 + beta) * v_old - beta * v_new)

    def weighted(pred: torch.Tensor) -> torch.Tensor:
        err = pred - x0
        w = err.detach().abs().flatten(1).mean(1).clamp(min=1e-5)
        return err.pow(2).flatten(1).mean(1) / w

    r = r.float()
    return (r * weighted(positive) + (1 - r) * weighted(negative)) / beta
