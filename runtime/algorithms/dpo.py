"""Diffusion-/Flow-DPO, beta schedules, IPO regularisers and the decoupled backward (ALGORITHMS.md §6-7)."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .flow import at_least_fp32


def dpo_margin(e_w, e_l, e_ref_w, e_ref_l) -> torch.Tensor:
    """(e_w - e_l) - (e_ref_w - e_ref_l): negative when the policy prefers the winner more than the reference."""
    f = at_least_fp32
    return (f(e_w) - f(e_l)) - (f(e_ref_w) - f(e_ref_l))


def dpo_loss(e_w, e_l, e_ref_w, e_ref_l, beta: float) -> torch.Tensor:
    """Per-pair L = -log sigmoid(-beta/2 * margin), with SHARED noise and timestep for w and l."""
    return -F.logsigmoid(-0.5 * beta * dpo_margin(e_w, e_l, e_ref_w, e_ref_l))


def beta_at(schedule: dict, step: int, total: int) -> float:
    """constant / linear(start, end) / cosine(start, end) over `total` steps."""
    kind = schedule["kind"]
    if kind == "constant":
        return float(schedule["value"])
    frac = min(max(step / max(total - 1, 1), 0.0), 1.0)
    start, end = float(schedule["start"]), float(schedule["end"])
    if kind == "linear":
        return start + (end - start) * frac
    if kind == "cosine":
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * frac))
    raise ValueError(f"unknown beta schedule {kind!r}")


def ipo_total(dpo: torch.Tensor, nll_winner: torch.Tensor | None, nll_real: torch.Tensor | None,
              lambda_winner: float, lambda_real: float) -> torch.Tensor:
    """IPO: DPO + lambda1 NLL(winner) + lambda2 NLL(real videos); NLL = the flow-matching loss."""
    total = dpo.mean()
    if nll_winner is not None and lambda_winner > 0:
        total = total + lambda_winner * nll_winner.mean()
    if nll_real is not None and lambda_real > 0:
        total = total + lambda_real * nll_real.mean()
    return total


def decoupled_weight(margin: torch.Tensor, beta: float) -> torch.Tensor:
    """dL/d(margin) of -log sigmoid(-beta/2 m) is (beta/2) sigmoid(beta/2 m): the detached weight that
    turns each branch's error into a surrogate with the exact DPO gradient."""
    return (0.5 * beta * torch.sigmoid(0.5 * beta * at_least_fp32(margin))).detach()


BranchFn = Callable[[], torch.Tensor]  # runs the policy on one branch, returns per-pair errors (B,)


def dpo_backward(winner: BranchFn, loser: BranchFn, e_ref_w: torch.Tensor, e_ref_l: torch.Tensor, beta: float,
                 mode: str = "standard", scale: float = 1.0, nll_winner: float = 0.0,
                 params: list[torch.nn.Parameter] | None = None,
                 backward: Callable[[torch.Tensor], None] = torch.Tensor.backward) -> torch.Tensor:
    """Accumulates the gradient of (mean DPO loss + nll_winner * mean e_w) times `scale` into the
    parameters (the second term is IPO's lambda1 NLL on the winner); returns the DPO loss.

    Modes give the same gradients and differ in memory and passes (ALGORITHMS.md §7):
    - standard: both branches' graphs alive, one backward.
    - teleboost: two grad forwards, then two surrogate backwards (frees gradient buffers between them).
    - recompute: no-grad forwards of both for the weight, then forward+backward per branch.
    - winner_first: winner forward kept, loser error without grad, backward the winner, then forward +
      backward the loser: one branch's activations alive at a time for one extra forward.
    - stashed: one pair per call; each branch back-propagated unweighted into its own gradient buffer and
      combined once eta is known: one branch alive at a time with no extra forward.
    `backward(loss)` back-propagates each surrogate (the trainer's updater: DeepSpeed hooks in there).
    """
    n = e_ref_w.shape[0]
    if mode == "standard":
        e_w, e_l = winner(), loser()
        loss = dpo_loss(e_w, e_l, e_ref_w, e_ref_l, beta).mean()
        backward((loss + nll_winner * e_w.float().mean()) * scale)
        return loss.detach()
    if mode == "teleboost":
        e_w, e_l = winner(), loser()
        margin = dpo_margin(e_w.detach(), e_l.detach(), e_ref_w, e_ref_l)
        eta = decoupled_weight(margin, beta) * scale / n
        backward(((eta + nll_winner * scale / n) * e_w.float()).sum())
        backward((-eta * e_l.float()).sum())
        return dpo_loss(e_w.detach(), e_l.detach(), e_ref_w, e_ref_l, beta).mean()
    if mode == "recompute":
        with torch.no_grad():
            margin = dpo_margin(winner(), loser(), e_ref_w, e_ref_l)
        eta = decoupled_weight(margin, beta) * scale / n
        e_w = winner()
        backward(((eta + nll_winner * scale / n) * e_w.float()).sum())
        e_l = loser()
        backward((-eta * e_l.float()).sum())
        return -F.logsigmoid(-0.5 * beta * margin).mean()
    if mode == "winner_first":
        e_w = winner()
        with torch.no_grad():
            e_l_nograd = loser()
        margin = dpo_margin(e_w.detach(), e_l_nograd, e_ref_w, e_ref_l)
        eta = decoupled_weight(margin, beta) * scale / n
        backward(((eta + nll_winner * scale / n) * e_w.float()).sum())
        del e_w
        e_l = loser()
        backward((-eta * e_l.float()).sum())
        return -F.logsigmoid(-0.5 * beta * margin).mean()
    if mode == "stashed":
        if params is None:
            raise ValueError("the stashed schedule needs the trainable `params`")
        return _stashed_backward(winner, loser, e_ref_w, e_ref_l, beta, scale, nll_winner, params, backward)
    raise ValueError(f"unknown DPO backward mode {mode!r}")


def _stashed_backward(winner, loser, e_ref_w, e_ref_l, beta, scale, nll_winner, params,
                      backward=torch.Tensor.backward) -> torch.Tensor:
    """One pair: back-propagate each branch's error unweighted, one graph at a time, stashing the
    winner's gradient; once both errors are known, grad += eta_w g_w - eta g_l. Two forwards and two
    backwards (the standard path's work) with one branch's activations alive, for one extra
    gradient-sized buffer. Exact because eta is a scalar for a single pair."""
    if e_ref_w.shape[0] != 1:
        raise ValueError("the stashed schedule takes one pair per call; loop over the micro-batch")
    params = [p for p in params if p.requires_grad]
    before = [p.grad for p in params]
    for p in params:
        p.grad = None
    e_w = winner()
    backward(e_w.float().sum())
    g_w = [p.grad for p in params]
    for p in params:
        p.grad = None
    e_l = loser()
    backward(e_l.float().sum())
    margin = dpo_margin(e_w.detach(), e_l.detach(), e_ref_w, e_ref_l)
    eta = float(decoupled_weight(margin, beta)) * scale
    eta_w = eta + nll_winner * scale
    for p, prev, gw in zip(params, before, g_w):
        gl = p.grad
        combined = None
        if gw is not None:
            combined = gw.mul_(eta_w)
        if gl is not None:
            combined = -eta * gl if combined is None else combined.sub_(gl, alpha=eta)
        if prev is not None:
            combined = prev if combined is None else combined.add_(prev)
        p.grad = combined
    return -F.logsigmoid(-0.5 * beta * margin).mean()
