"""The 2026 GRPO options (docs/algorithms.md §S3) as the trainer's hooks: the rollout's SDE window
(MixGRPO), GRPO-Guard's regulated ratio and step weight, and the KL's space. The math is in
runtime/algorithms (window, sde.step_mean, guard); this module only reads the plan's config."""
from __future__ import annotations

import torch

from runtime.algorithms import guard, window


def sde_steps(cfg: dict, step: int, num_steps: int) -> frozenset[int] | None:
    """The SDE steps of optimiser step `step`'s rollouts under `with window`; None: all of them."""
    w = cfg.get("window")
    if not w:
        return None
    return window.window_steps(step, num_steps, w["size"], w["shift_every"], w["stride"], w["schedule"], cfg["seed"])


def steps_per_sample(cfg: dict, trainable: int) -> int:
    """How many of a rollout's `trainable` (stochastic) steps are trained: all of a window's, else the
    stage's `train_fraction` of them."""
    if cfg.get("window"):
        return trainable
    return max(1, round(cfg["train_fraction"] * trainable))


def log_ratio_terms(cfg: dict, logp_new: torch.Tensor, logp_old: torch.Tensor, mu_new: torch.Tensor,
                    mu_old: torch.Tensor, std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(new, old) whose difference is the log-ratio the clipped loss exponentiates: as they are, or with
    `guard` GRPO-Guard's RatioNorm of it (against a zero `old`)."""
    if not cfg.get("guard"):
        return logp_new, logp_old
    normed = guard.guard_log_ratio(logp_new, logp_old, mu_new, mu_old, std)
    return normed, torch.zeros_like(normed)


def policy_weight(cfg: dict, s: float, s_next: float) -> float:
    """GRPO-Guard's 1/|dt| weight of a step's policy loss; 1 otherwise."""
    return guard.guard_step_weight(s, s_next) if cfg.get("guard") else 1.0


def kl_term(cfg: dict, noise_kind: str, mu: torch.Tensor, mu_ref: torch.Tensor, v: torch.Tensor,
            v_ref: torch.Tensor, level: float, std: float) -> torch.Tensor:
    """The KL to the reference per sample in the stage's `kl_space`."""
    if cfg["kl_space"] == "velocity":
        return guard.velocity_kl(v, v_ref)
    return guard.transition_kl(noise_kind, mu, mu_ref, level, std)


def prefix_group(cfg: dict, mine: slice) -> int:
    """Rows per shared ODE prefix of this rank's rollouts: a whole group under `with window` and
    `shared_noise` (its rollouts share noise and prompt, so they coincide until the window), when this
    rank holds whole groups; else 1 (every rollout computes its own prefix, the same states)."""
    g = cfg["group_size"]
    if not (cfg.get("window") and cfg.get("shared_noise")) or mine.start % g or (mine.stop - mine.start) % g:
        return 1
    return g
