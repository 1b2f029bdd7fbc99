"""Training options the schema accepts must change what training does: EMA and activation checkpointing."""
from __future__ import annotations

import torch
from safetensors.torch import load_file

from .conftest import job_dir, vpo


def test_ema_output_differs_from_raw_weights_and_resumes(tiny_recipe, tmp_path):
    plain = tiny_recipe(steps=8)
    vpo("run", plain, "--only", "sft", "--run-dir", tmp_path / "plain", "--progress", "quiet")
    averaged = tmp_path / "ema.vpo"
    averaged.write_text(plain.read_text().replace("checkpoint_every = 4\n}", "checkpoint_every = 4\n  ema = 0.9\n}", 1))
    vpo("run", averaged, "--only", "sft", "--run-dir", tmp_path / "ema", "--progress", "quiet")
    raw = load_file(str(job_dir(tmp_path / "plain", "sft") / "artifacts" / "policy" / "weights.safetensors"))
    ema = load_file(str(job_dir(tmp_path / "ema", "sft") / "artifacts" / "policy" / "weights.safetensors"))
    diffs = [float((raw[k] - ema[k]).abs().max()) for k in raw]
    assert max(diffs) > 1e-4  # the averaged weights lag the raw ones


def test_gradient_checkpointing_gives_the_same_weights(tiny_recipe, tmp_path):
    base = tiny_recipe(steps=4)
    vpo("run", base, "--only", "sft", "--run-dir", tmp_path / "a", "--progress", "quiet")
    ckpt = tmp_path / "ckpt.vpo"
    ckpt.write_text(base.read_text().replace("checkpoint_every = 4\n}", "checkpoint_every = 4\n  gradient_checkpointing = true\n}", 1))
    vpo("run", ckpt, "--only", "sft", "--run-dir", tmp_path / "b", "--progress", "quiet")
    a = load_file(str(job_dir(tmp_path / "a", "sft") / "artifacts" / "policy" / "weights.safetensors"))
    b = load_file(str(job_dir(tmp_path / "b", "sft") / "artifacts" / "policy" / "weights.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)


def test_checkpointing_follows_the_execution_block(tiny_recipe, tmp_path):
    """The runtime switches checkpointing on exactly when the plan's execution block says so: the
    recipe's choice lands in the block, the planner's choice too, and nothing else is read."""
    from runtime.context import JobContext
    from runtime.rundir import RunDir
    from runtime.trainers.common import load_policy
    from vpolang.planning import build_plan

    plan = build_plan(tiny_recipe(), {}, None)[1]
    job = plan.job("sft")
    run = RunDir(tmp_path)
    ctx = JobContext(plan, job, run, run.job(job))
    assert job.execution.checkpointing is False
    assert not load_policy(ctx).transformer.is_gradient_checkpointing
    job.estimate.breakdown["gradient_checkpointing"] = 1.0  # free-form estimate fields decide nothing
    assert not load_policy(ctx).transformer.is_gradient_checkpointing
    job.execution.checkpointing = True  # what the planner writes when nothing fits without it
    assert load_policy(ctx).transformer.is_gradient_checkpointing

    pinned = tmp_path / "pinned.vpo"
    pinned.write_text(tiny_recipe().read_text().replace("checkpoint_every = 4\n}",
                                                       "checkpoint_every = 4\n  gradient_checkpointing = true\n}", 1))
    assert build_plan(pinned, {}, None)[1].job("sft").execution.checkpointing is True
