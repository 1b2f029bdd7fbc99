"""GRPO-Guard's regulated ratio (arXiv 2510.22319) and the velocity-space KL (flow_grpo issue 198).

The per-step log-ratio of two Gaussians of the same std around the rollout mean mu_old and the current
mean mu (x' = mu_old + std z, d = mu - mu_old, means over latent elements as everywhere in §1):

    log rho = mean(z d) / std - mean(d^2) / (2 std^2)

Its second term is never positive: the ratio is biased below 1 whatever the advantage, by an amount
that grows as std shrinks (late, low-noise steps), so the upper clip 1 + eps rarely binds for positive
advantages. RatioNorm adds the bias back and rescales by the step's std (public reference
formulations: verl-omni's GRPO-Guard loss, Flow-Factory's grpo-guard trainer):

    log rho_guard = std * (log rho + mean(d^2) / (2 std^2)) = mean(z d)

which has mean 0 under the rollout policy and the same scale at every step. The step's loss is then
weighted by 1 / |dt| (the paper's gradient reweighting: the gradient of mean(z d) carries a factor
|dt| through mu, which this cancels, so no noise level dominates)."""
from __future__ import annotations

import torch


def guard_log_ratio(logp_new: torch.Tensor, logp_old: torch.Tensor, mu_new: torch.Tensor, mu_old: torch.Tensor,
                    std: float) -> torch.Tensor:
    """RatioNorm: `std * (logp_new - logp_old + mean(d^2) / (2 std^2))`, d = mu_new - mu_old.

    Per sample (log-probs (B,), the mean over a sample's elements) or per position (ViPO: log-probs of
    the latent's shape, d^2 per element); returns the log-ratio to exponentiate."""
    if std <= 0:
        raise ValueError("GRPO-Guard needs a stochastic step (std > 0)")
    d2 = (mu_new.float() - mu_old.float().detach()).pow(2)
    if logp_new.dim() == 1:
        d2 = d2.flatten(1).mean(1)
    return std * (logp_new.float() - logp_old.float() + d2 / (2 * std * std))


def guard_step_weight(s: float, s_next: float) -> float:
    """The gradient reweighting of a step s -> s_next: 1 / |dt|."""
    if not s > s_next:
        raise ValueError(f"a step runs from s down to s_next < s; got {s} -> {s_next}")
    return 1.0 / (s - s_next)


def velocity_kl(v_policy: torch.Tensor, v_ref: torch.Tensor) -> torch.Tensor:
    """The KL penalty in velocity space: mean((v - v_ref)^2) per sample, shape (B,). Unlike the
    transition-mean KL (ppo.gaussian_kl) it does not divide by the step's noise, so it neither vanishes
    at high noise nor explodes on low-noise steps, and it is defined for ODE steps as well."""
    return (v_policy.float() - v_ref.float()).pow(2).flatten(1).mean(1)


def transition_kl(noise_kind: str, mu_policy: torch.Tensor, mu_ref: torch.Tensor, level: float,
                  std: float) -> torch.Tensor:
    """The transition-mean KL per sample, (B,): flow_grpo and dance keep ALGORITHMS.md §1's
    `mean(d^2) / (2 g^2)`; cps has no g, so it takes the exact KL of its two Gaussians, `/ (2 std^2)`."""
    from .ppo import gaussian_kl

    if noise_kind == "cps":
        return (mu_policy.float() - mu_ref.float()).pow(2).flatten(1).mean(1) / (2 * std * std)
    return gaussian_kl(mu_policy, mu_ref, level)
