"""A test double for the trainers: linear regression trained with SGD + momentum, following the trainer
protocol of runtime/registry.py to the letter (resume with optimiser and RNG state, periodic checkpoints,
stop on request, NaN check, outputs written whole). It draws its data from the global torch RNG on
purpose, so a resumed run only matches an uninterrupted one if the RNG state is saved and restored.

Config (a typed config of a training kind): steps, lr, batch (global, split across ranks),
checkpoint_every. Set by conftest.toy_plan: VPO_TOY_STEP_SLEEP, seconds per step (to leave time to
interrupt it); VPO_TOY_LR, {"job id": lr}, a learning rate beyond what a plan accepts (`lr <= 1`), to
make a job diverge."""
from __future__ import annotations

import json
import os
import shutil
import time

import torch

from runtime.context import JobContext, rng_state, set_rng_state

TRUE_WEIGHTS = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])


def run(ctx: JobContext, stop_after: int | None = None) -> None:
    """`stop_after` (tests only) asks for a stop after that step, as a preemption signal would."""
    cfg = ctx.config
    model = torch.nn.Linear(4, 1)
    _load_inputs(ctx, model)
    optimizer = torch.optim.SGD(model.parameters(), lr=json.loads(os.environ.get("VPO_TOY_LR", "{}")).get(ctx.job.id, cfg.lr),
                                momentum=0.9)
    start = _resume(ctx, model, optimizer)
    for step in range(start, cfg.steps):
        loss = _loss(ctx, model)
        ctx.check_finite(loss, step + 1)
        optimizer.zero_grad()
        loss.backward()
        _average_gradients(ctx, model)
        optimizer.step()
        ctx.metrics(step + 1, loss=loss.item())
        if stop_after == step + 1:
            ctx.request_stop("preempted")
        stop = ctx.should_stop()
        if (step + 1) % cfg.checkpoint_every == 0 or stop:
            _save(ctx, step + 1, model, optimizer)
        if stop:
            return
        time.sleep(float(os.environ.get("VPO_TOY_STEP_SLEEP", "0")))
    _write_outputs(ctx, model)


run.distributed = True


def _loss(ctx: JobContext, model: torch.nn.Module) -> torch.Tensor:
    """Every rank draws the same global batch and takes its share: N ranks see what one process would."""
    batch = ctx.config.batch
    x = torch.randn(batch, 4)
    y = x @ TRUE_WEIGHTS + 0.1 * torch.randn(batch, 1)
    share = batch // ctx.world_size
    mine = slice(ctx.rank * share, (ctx.rank + 1) * share)
    return torch.nn.functional.mse_loss(model(x[mine]), y[mine])


def _average_gradients(ctx: JobContext, model: torch.nn.Module) -> None:
    if ctx.world_size == 1:
        return
    import torch.distributed as dist

    for p in model.parameters():
        dist.all_reduce(p.grad)
        p.grad /= ctx.world_size


def _load_inputs(ctx: JobContext, model: torch.nn.Module) -> None:
    for slot in sorted(ctx.job.inputs):
        model.load_state_dict(torch.load(ctx.input_path(slot) / "weights.pt"))


def _resume(ctx: JobContext, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    found = ctx.checkpoints.latest_valid()
    if found is None:
        return 0
    state = ctx.checkpoints.load(found[1])
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    ctx.log(f"resumed from checkpoint at step {state['step']}")
    return state["step"]


def _save(ctx: JobContext, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    if ctx.is_main:
        ctx.checkpoints.save(step, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "rng": rng_state(), "step": step})


def _write_outputs(ctx: JobContext, model: torch.nn.Module) -> None:
    if not ctx.is_main:
        return
    for name in ctx.job.outputs:
        final = ctx.output_path(name)
        tmp = final.with_name(f".{name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        torch.save(model.state_dict(), tmp / "weights.pt")
        shutil.rmtree(final, ignore_errors=True)  # left by an attempt killed before it recorded done
        os.replace(tmp, final)
