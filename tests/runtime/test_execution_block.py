"""The runtime executes the plan's execution block and nothing else: one backward per micro-batch with
the accumulated gradient of the one-forward step, the optimiser the block names, and a refusal when
the block is missing or was planned for another number of processes."""
from __future__ import annotations

import pytest
import torch

from runtime.context import JobContext
from runtime.errors import JobError
from runtime.rundir import RunDir
from runtime.trainers.common import load_policy, weighted_flow_matching_step
from runtime.trainers.updater import TorchUpdater, updater_for
from vpolang.planning import build_plan


class CountingUpdater:
    """Back-propagates like the torch updater and counts the passes."""

    def __init__(self):
        self.backwards = 0

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()
        self.backwards += 1


def context(tiny_recipe, tmp_path, **block) -> JobContext:
    plan = build_plan(tiny_recipe(), {}, None)[1]
    job = plan.job("sft")
    job.execution = job.execution.model_copy(update=block)
    run = RunDir(tmp_path)
    return JobContext(plan, job, run, run.job(job))


def gradient(ctx: JobContext) -> tuple[dict[str, torch.Tensor], int]:
    torch.manual_seed(0)
    policy = load_policy(ctx)
    cfg = ctx.config
    shape = policy.latent_shape(cfg.frames, *cfg.resolution)
    latents = torch.randn(8, *shape, generator=torch.Generator().manual_seed(1))
    prompts = [f"a red square {i}" for i in range(8)]
    counter = CountingUpdater()
    weights = torch.linspace(0.5, 1.5, 8)
    weighted_flow_matching_step(ctx, policy, counter, latents, prompts, weights, 0, {})
    grads = {n: p.grad.clone() for n, p in policy.transformer.named_parameters() if p.grad is not None}
    return grads, counter.backwards


def test_sft_step_accumulates_one_backward_per_micro_batch(tiny_recipe, tmp_path):
    one_ctx = context(tiny_recipe, tmp_path / "one")
    assert (one_ctx.execution.rows_per_rank, one_ctx.execution.micro_batch) == (4, 4)  # the planner's choice
    whole, passes = gradient(one_ctx)
    assert passes == 1
    split, passes = gradient(context(tiny_recipe, tmp_path / "split", micro_batch=1, grad_accum=4))
    assert passes == 4
    assert whole.keys() == split.keys() and whole
    for name, g in whole.items():
        torch.testing.assert_close(split[name], g, rtol=1e-5, atol=1e-7, msg=name)


def test_the_optimiser_is_the_blocks(tiny_recipe, tmp_path):
    ctx = context(tiny_recipe, tmp_path)
    assert ctx.execution.optimizer == "torch_adamw"
    assert isinstance(updater_for(ctx, torch.nn.Linear(2, 2)), TorchUpdater)


def test_a_training_job_without_a_block_or_for_another_world_is_refused(tiny_recipe, tmp_path):
    ctx = context(tiny_recipe, tmp_path, world_size=2)
    with pytest.raises(JobError, match="execution block is for 2 process"):
        ctx.check_execution()
    ctx.job.execution = None
    with pytest.raises(JobError, match="no execution block"):
        ctx.check_execution()
