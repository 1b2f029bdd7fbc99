"""The clipped ratio loss and the KL to the reference for flow GRPO (ALGORITHMS.md §1-2)."""
from __future__ import annotations

import torch


def clipped_policy_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                        clip_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """L = mean(max(-A rho, -A clip(rho, 1-eps, 1+eps))), rho = exp(logp_new - logp_old).

    Works per sample (B,) or per position (ViPO: advantages and log-probs of the same shape).
    Returns (loss, fraction of clipped terms)."""
    rho = torch.exp(logp_new.float() - logp_old.float())
    adv = advantages.float()
    unclipped = -adv * rho
    clipped = -adv * rho.clamp(1 - clip_range, 1 + clip_range)
    loss = torch.maximum(unclipped, clipped).mean()
    clip_frac = ((rho - 1).abs() > clip_range).float().mean()
    return loss, clip_frac


def gaussian_kl(mu_policy: torch.Tensor, mu_ref: torch.Tensor, g: float) -> torch.Tensor:
    """KL of two same-variance Gaussians per sample: mean((mu - mu_ref)^2 / (2 g^2)), shape (B,)."""
    return ((mu_policy.float() - mu_ref.float()).pow(2) / (2 * g * g)).flatten(1).mean(1)


def per_position_logprob(x_next: torch.Tensor, mu: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x' | mu, std^2) per latent element (ViPO takes the ratio per position)."""
    import math

    z = (x_next.float() - mu.float()) / std
    return -0.5 * z.pow(2) - math.log(std) - 0.5 * math.log(2 * math.pi)
