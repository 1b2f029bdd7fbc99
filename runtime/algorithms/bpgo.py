"""BPGO: trust allocation against a per-prompt prior reward (ALGORITHMS.md §3; docs/algorithms.md §S2).

One pure function per step: `squash_unbounded` (logit heads onto (0, 1)), `crt_teleboost` (a monotone
version of the reference CRT), `ras_scale_teleboost` / `ras_weight_paper` (trust), and
`trust_advantages`, which turns one head's groups and priors into advantages and trust weights."""
from __future__ import annotations

import math

import torch

from .advantages import group_advantages
from .flow import at_least_fp32

CRT_FLOOR = 1e-3  # the CRT's magnitude factor uses max(r, CRT_FLOOR): positive, so the CRT stays monotone


def squash_unbounded(values: torch.Tensor, bounded: list[bool]) -> torch.Tensor:
    """(N, K) head values: columns of unbounded heads (logits) go through the logistic sigmoid, i.e. the
    Bradley-Terry probability of beating a zero-logit video; bounded heads pass unchanged."""
    mask = torch.tensor([not b for b in bounded], dtype=torch.bool)
    return torch.where(mask, torch.sigmoid(values.float()), values.float())


def _crt_scale(x: torch.Tensor, tau: float) -> torch.Tensor:
    """sigmoid(x / tau) * max(x, floor): positive and strictly increasing in x."""
    return torch.sigmoid((x / tau).clamp(-30, 30)) * x.clamp(min=CRT_FLOOR)


def crt_teleboost(r: torch.Tensor, prior: torch.Tensor | float, a: float = 50.0, tau: float = 5.0) -> torch.Tensor:
    """Monotone CRT. Above the prior it is the reference `(a (r - prior) + 1) sigmoid(r / tau) r`
    (exponent clamped to +-30) with r floored at CRT_FLOOR in the trailing factor; at or below the prior
    it is `a (r - prior) sigmoid(prior / tau) max(prior, floor)`, linear in r with the factor frozen at
    the prior. The reference multiplies by r itself, which reverses the order of rewards below the prior
    (prior 0: CRT(-2) = 80.3 > CRT(1) = 28.0; prior .65: CRT(.1) = -1.39 < CRT(.01) = -0.16)."""
    r = at_least_fp32(r)
    if r.dtype == torch.float32:
        r = r.double()  # a (r - prior) r overflows fp32 for |r| ~ 1e19
    prior = torch.as_tensor(prior, dtype=r.dtype)
    above = (a * (r - prior) + 1) * _crt_scale(r, tau)
    below = a * (r - prior) * _crt_scale(prior, tau)
    return torch.where(r > prior, above, below)


def ras_scale_teleboost(group_rewards: torch.Tensor, prior: float, alpha: float = 1.0) -> torch.Tensor:
    """Posterior of the group mean with a N(prior, 1) prior; p = P(mean > prior); w = 0.5 + p; the
    advantage multiplier is clamp(1 + alpha (w - 1), 0.01, 10)."""
    r = group_rewards.float()
    n = r.numel()
    m = r.mean()
    v = (r.var(unbiased=True) if n > 1 else torch.tensor(0.0)) + 1e-8
    pv = 1.0 / (n / v + 1.0)
    pm = pv * (n * m / v + prior)
    z = (prior - pm) / torch.sqrt(pv)
    p = 1 - 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    w = 0.5 + p
    return (1 + alpha * (w - 1)).clamp(0.01, 10.0)


def ras_weight_paper(mean_reward: float | torch.Tensor, prior: float, alpha: float = 0.5, k: float = 10.0):
    """w = 1 + alpha (2 sigmoid(k (mean_r - prior)) - 1): scales the group's GRPO loss."""
    m = torch.as_tensor(mean_reward, dtype=torch.float32)
    return 1 + alpha * (2 * torch.sigmoid(k * (m - prior)) - 1)


def crt_paper(r: torch.Tensor, prior: float, lam: float = 1.0) -> torch.Tensor:
    """Monotone paper CRT: above the prior `(lambda (r - prior) + 1) exp(r)` as in the paper; at or
    below it `lambda (r - prior) exp(prior)` (the paper's exp(r) there turns back up for r < prior - 1).
    Exponents are clamped at 30 so huge rewards stay finite."""
    r = at_least_fp32(r)
    prior = torch.as_tensor(prior, dtype=r.dtype)
    above = (lam * (r - prior) + 1) * torch.exp(r.clamp(max=30))
    below = lam * (r - prior) * torch.exp(prior.clamp(max=30))
    return torch.where(r > prior, above, below)


def trust_advantages(groups: torch.Tensor, priors: torch.Tensor, cfg: dict, ddof: int = 0, eps: float = 1e-4,
                     clip: float = 5.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One head's BPGO advantages. groups: (num_groups, G) rewards already on a bounded scale; priors:
    (num_groups,) on the same scale; cfg: the `with bpgo` fields. Returns advantages (num_groups, G) and
    the trust weight of each group (the RAS multiplier, or the paper form's w)."""
    advs, trust = [], []
    for grp, prior in zip(groups, priors.tolist()):
        if cfg["form"] == "teleboost":
            w = ras_scale_teleboost(grp, prior, cfg["alpha"])
            a = group_advantages(crt_teleboost(grp, prior, cfg["a"], cfg["tau"]), ddof, eps, clip) * w
        else:
            w = ras_weight_paper(grp.mean(), prior, cfg["alpha"], cfg["k"])
            crt = group_advantages(crt_paper(grp, prior, cfg["lam"]), ddof, eps, clip)
            a = w * group_advantages(grp, ddof, eps, clip) + cfg["zeta"] * crt
        advs.append(a.float())
        trust.append(w.float())
    return torch.stack(advs), torch.stack(trust)
