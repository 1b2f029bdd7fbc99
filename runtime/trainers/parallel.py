"""Data parallelism for the trainers: every rank draws the same global batch (same indices, same noise)
and trains on its contiguous share (the plan's execution block says how many rows, and how many per
forward/backward: gradient accumulation); gradients are averaged before the optimiser step, so N ranks take
the step one process would take on the whole batch (up to the order of the floating-point sums).

Rewards and advantages that depend on the whole batch (group statistics, min-norm weights, priors) are
computed from gathered scores, identically on every rank.

Sequence parallelism of degree k (the block's `sequence_parallel`; runtime/parallel/sequence.py): the k
consecutive ranks of a group hold the same rows, each back-propagates its tokens' share of their
gradient; so a group's gradient is the sum over its ranks, and the step's is the mean over the
world / k groups; gathered rows are taken once per group."""
from __future__ import annotations

import torch

from runtime.context import JobContext
from runtime.errors import JobError


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1 else None


_SEQUENCE_PARALLEL = 1  # this process's sequence-parallel degree (set once a job splits its transformer)


def use_sequence_parallel(degree: int) -> None:
    global _SEQUENCE_PARALLEL
    _SEQUENCE_PARALLEL = int(degree)


def share(ctx: JobContext, total: int) -> slice:
    """This rank's contiguous rows of a global batch of `total` rows: the execution block's
    `rows_per_rank` each (GRPO splits rollouts, so a group may lie on several ranks); the ranks of a
    sequence-parallel group get the same rows."""
    per, k = ctx.execution.rows_per_rank, ctx.execution.sequence_parallel
    groups = ctx.world_size // k
    if per * groups != total:
        raise JobError(f"a global batch of {total} rows does not match the plan's execution block "
                       f"({groups} x {per} rows); re-create the plan with `vpo plan`")
    group = ctx.rank // k
    return slice(group * per, (group + 1) * per)


def micro_batches(ctx: JobContext, rows: int) -> list[slice]:
    """`rows` (this rank's share, or a subset of it) in forward/backward passes of at most the block's
    micro-batch; their gradients accumulate until the step."""
    micro = ctx.execution.micro_batch
    return [slice(start, min(start + micro, rows)) for start in range(0, rows, micro)]


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """All-reduce the mean of every gradient across ranks, in one flat buffer (one collective). A rank
    that had nothing to back-propagate (GRPO rows all gated out) contributes zeros."""
    dist = _dist()
    if dist is None:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size() // _SEQUENCE_PARALLEL  # a group's ranks hold parts of one gradient
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """The rows of every rank's tensor, in rank order (the global batch's order), once per
    sequence-parallel group."""
    dist = _dist()
    if dist is None:
        return t
    device = t.device if dist.get_backend() != "gloo" else torch.device("cpu")
    local = t.detach().to(device)
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local.contiguous())
    return torch.cat(parts[::_SEQUENCE_PARALLEL]).to(t.device)


def mean_over_ranks(value: float) -> float:
    """A logged scalar averaged over the ranks (each computed it on an equal share)."""
    dist = _dist()
    if dist is None:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()
