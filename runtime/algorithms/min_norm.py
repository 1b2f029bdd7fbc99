"""Min-norm combination of per-reward advantages (ALGORITHMS.md §5)."""
from __future__ import annotations

import torch


def min_norm_two(a1: torch.Tensor, a2: torch.Tensor) -> torch.Tensor:
    """argmin_c ||c a1 + (1-c) a2||^2 on [0, 1]: c1 = clip(((a2 - a1).a2) / ||a1 - a2||^2, 0, 1)."""
    diff = (a1 - a2).double()
    denom = diff.pow(2).sum()
    if denom <= 1e-18:
        c1 = torch.tensor(0.5, dtype=torch.float64)
    else:
        c1 = (((a2 - a1).double() * a2.double()).sum() / denom).clamp(0, 1)
    return torch.stack([c1, 1 - c1]).float()


def min_norm_weights(vectors: torch.Tensor, max_iter: int = 250, tol: float = 1e-5) -> torch.Tensor:
    """Frank-Wolfe on the Gram matrix for N objectives: vectors (N, D) -> simplex weights (N,)."""
    v = vectors.double()
    n = v.shape[0]
    if n == 1:
        return torch.ones(1)
    if n == 2:
        return min_norm_two(v[0], v[1])
    gram = v @ v.T
    c = _best_pair_start(v, gram)
    for _ in range(max_iter):
        i = int(torch.argmin(gram @ c))
        e = torch.zeros(n, dtype=torch.float64)
        e[i] = 1.0
        # exact line search on ||(1-g) c + g e||^2 between the current point and vertex i
        d = e - c
        denom = d @ gram @ d
        gamma = float((-(c @ gram @ d) / denom).clamp(0, 1)) if denom > 1e-18 else 0.0
        step = gamma * d
        c = c + step
        if step.abs().sum() < tol:
            break
    return c.float()


def _best_pair_start(v: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """Start Frank-Wolfe from the best two-objective solution (as the MGDA solver does): exact when the
    optimum lies on an edge, and a much better start than the centre otherwise."""
    n = v.shape[0]
    best, best_val = None, None
    for i in range(n):
        for j in range(i + 1, n):
            cij = min_norm_two(v[i], v[j]).double()
            c = torch.zeros(n, dtype=torch.float64)
            c[i], c[j] = cij[0], cij[1]
            val = float(c @ gram @ c)
            if best_val is None or val < best_val:
                best, best_val = c, val
    return best


def combine(advantages: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    return sum(w * a for w, a in zip(weights.tolist(), advantages))


def balance_weights(advantages: torch.Tensor, balance: str, weights: list[float] | None = None) -> torch.Tensor:
    """Weights of K per-head advantage vectors (K, N): `min_norm` (§5), `weights` (fixed) or `sum` (ones).

    Min-norm leaves out heads whose advantages are all zero (no group saw that reward vary): the zero
    vector is always the minimum-norm point, so one flat head would zero every other head's signal. If
    every head is flat the weights are uniform (the combination is zero either way)."""
    if balance == "min_norm":
        live = advantages.abs().amax(dim=1) > 0
        if not bool(live.any()):
            return torch.full((advantages.shape[0],), 1.0 / advantages.shape[0])
        weights = torch.zeros(advantages.shape[0])
        weights[live] = min_norm_weights(advantages[live])
        return weights
    if balance == "weights":
        return torch.tensor(weights, dtype=torch.float32)
    return torch.ones(advantages.shape[0])
