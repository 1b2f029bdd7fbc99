"""The execution block: decided once by the planner, on every training job, covered by the job hash,
shown by `vpo plan`; the memory and time estimates are those of the block (a pinned micro-batch moves
both), and a pinned schedule that does not divide or fit is an error at its field."""
from __future__ import annotations

import re

from typer.testing import CliRunner

from vpolang.cli import app
from vpolang.plan import TRAINING_KINDS
from vpolang.planning import build_plan
from vpolang.planview import render_diff

from .common import ROOT

SFT = """vpo 0.1
use std.models

cluster box = slurm { gpu = "H100-80GB", gpus_per_node = 8 }
model base = models.wan21_t2v_1_3b { path = "w" }

stage s = sft(base) on box {
  data       = videos("v/*.mp4")
  steps      = 10
  batch      = 32
  lr         = 1e-6
  resolution = 480p
  frames     = 33
EXTRA}
"""


def planned(tmp_path, text: str, name: str = "r.vpo"):
    path = tmp_path / name
    path.write_text(text)
    result, plan = build_plan(path, {}, None)
    return result, plan


def test_every_training_job_of_every_example_carries_a_block():
    for recipe in sorted((ROOT / "examples").glob("*.vpo")):
        plan = build_plan(recipe, {}, None)[1]
        for job in plan.jobs:
            assert (job.execution is not None) == (job.kind in TRAINING_KINDS), (recipe.name, job.id)
            if job.execution is not None:
                block = job.execution
                assert block.micro_batch * block.grad_accum == block.rows_per_rank
                assert block.world_size == job.placement.world_size


def test_teleboost_sft_plans_the_accumulated_schedule_it_estimates():
    """The plan's 50.5 GiB is one video per forward: the block says so (1 x 2 accumulation), and the
    runtime executes that block; before, the trainer ran both videos in one forward (95 GiB)."""
    plan = build_plan(ROOT / "examples" / "teleboost.vpo", {}, None)[1]
    sft = plan.job("sft")
    assert (sft.execution.rows_per_rank, sft.execution.micro_batch, sft.execution.grad_accum) == (2, 1, 2)
    assert (sft.execution.optimizer, sft.execution.zero_stage) == ("deepspeed_zero", 2)  # 16 GPUs
    assert sft.estimate.peak_memory_gib < 80


def test_teleboost_grpo_splits_rollouts_so_groups_span_ranks():
    """8 prompts x group_size 8 on 32 GPUs: 2 rollouts per rank; keeping groups whole stopped it at step 0."""
    rl = build_plan(ROOT / "examples" / "teleboost.vpo", {}, None)[1].job("rl")
    assert rl.execution.world_size == 32 and rl.execution.rows_per_rank == 2
    assert rl.execution.groups_span_ranks and rl.execution.reward_execution == "serial"  # one reward model, three heads


def test_pinned_micro_batch_moves_the_block_the_memory_the_time_and_the_hash(tmp_path):
    """Short clips, where a step's time depends on how many videos share a pass (the host floor)."""
    small = SFT.replace("480p", "240p").replace("frames     = 33", "frames     = 9")
    blocks, peaks, steps, hashes, plans = {}, {}, {}, {}, {}
    for micro in (1, 2, 4):
        extra = f"  micro_batch = {micro}\n  gradient_checkpointing = true\n"
        result, plan = planned(tmp_path, small.replace("EXTRA", extra), f"m{micro}.vpo")
        assert plan is not None, [d.message for d in result.diagnostics]
        job, plans[micro] = plan.job("s"), plan
        blocks[micro], peaks[micro] = job.execution, job.estimate.peak_memory_gib
        steps[micro], hashes[micro] = job.estimate.step_time_s, job.hash
    assert [(b.micro_batch, b.grad_accum, b.micro_batch_pinned) for b in blocks.values()] == \
        [(1, 4, True), (2, 2, True), (4, 1, True)]
    assert peaks[1] < peaks[2] < peaks[4]  # activations of the videos in one forward
    assert steps[1] > steps[2] > steps[4]  # the time model runs on the block's micro-batches too
    assert len(set(hashes.values())) == 3  # the hash covers the block
    diff = render_diff(plans[1], plans[4])
    assert "`execution.grad_accum`: 4 -> 1" in diff and "`micro_batch`: 1 -> 4" in diff


def test_optimiser_is_torch_on_one_gpu_zero2_on_several_and_the_recipe_pin_wins(tmp_path):
    one = planned(tmp_path, SFT.replace("gpus_per_node = 8", "gpus_per_node = 1").replace("EXTRA", ""), "one.vpo")
    assert (one[1].job("s").execution.optimizer, one[1].job("s").execution.zero_stage) == ("torch_adamw", None)
    many = planned(tmp_path, SFT.replace("EXTRA", ""), "many.vpo")[1].job("s").execution
    assert (many.optimizer, many.zero_stage) == ("deepspeed_zero", 2)
    pinned = planned(tmp_path, SFT.replace("EXTRA", "  zero_stage = 3\n"), "z3.vpo")[1].job("s").execution
    assert (pinned.optimizer, pinned.zero_stage) == ("deepspeed_zero", 3)


def test_pinned_micro_batch_that_does_not_divide_is_e0303_at_the_field(tmp_path):
    result, plan = planned(tmp_path, SFT.replace("EXTRA", "  micro_batch = 3\n"))
    assert plan is None
    [diag] = [d for d in result.diagnostics if d.severity == "error"]
    assert diag.code == "E0303" and diag.span.line == 14 and "use micro_batch = 1, 2, 4" in diag.message


def test_pinned_micro_batch_that_does_not_fit_is_e0302_at_the_field(tmp_path):
    result, plan = planned(tmp_path, SFT.replace("EXTRA", "  micro_batch = 4\n  gradient_checkpointing = false\n")
                           .replace("frames     = 33", "frames     = 81"))
    assert plan is None
    [diag] = [d for d in result.diagnostics if d.severity == "error"]
    assert diag.code == "E0302" and diag.span.line == 14


def test_vpo_plan_shows_the_schedule_and_explains_a_job():
    table = CliRunner().invoke(app, ["plan", str(ROOT / "examples" / "teleboost.vpo")])
    assert table.exit_code == 0, table.stderr
    assert "schedule" in table.stdout and "16r 1x2acc ZeRO-2" in table.stdout
    assert "32r 1x2acc ZeRO-2" in table.stdout and "groups-span" in table.stdout
    explained = CliRunner().invoke(app, ["plan", str(ROOT / "examples" / "teleboost.vpo"), "--explain", "rl"])
    assert explained.exit_code == 0, explained.stderr
    assert re.search(r"groups_span_ranks\s+True", explained.stdout)
    assert re.search(r"micro_batch\s+1", explained.stdout) and "peak 76.7 of 80 GiB" in explained.stdout
    unknown = CliRunner().invoke(app, ["plan", str(ROOT / "examples" / "teleboost.vpo"), "--explain", "nope"])
    assert unknown.exit_code == 1 and "no job `nope`" in unknown.stderr


KTO = """vpo 0.1
use std.models

cluster box = slurm { gpu = "H100-80GB", gpus_per_node = 8 }
model base = models.wan21_t2v_1_3b { path = "w" }

stage k = kto(base) on box {
  labels     = labels("l.jsonl")
  steps      = 10
  batch      = 32
  lr         = 1e-6
  resolution = 480p
  frames     = 33
EXTRA}
"""


def test_kto_accumulation_adds_its_no_grad_pass_to_the_plan_time(tmp_path):
    """Under accumulation KTO's trainer runs a no-grad policy forward over the batch before the
    micro-batches (the reference point needs every row first): the plan's time has that pass."""
    one = planned(tmp_path, KTO.replace("EXTRA", "  micro_batch = 4\n"), "one.vpo")[1].job("k")
    acc = planned(tmp_path, KTO.replace("EXTRA", "  micro_batch = 2\n"), "acc.vpo")[1].job("k")
    assert (one.execution.grad_accum, acc.execution.grad_accum) == (1, 2)
    assert "recompute" not in one.estimate.breakdown
    assert acc.estimate.breakdown["recompute"] == acc.estimate.breakdown["reference"]  # one forward per video
    assert acc.estimate.step_time_s > one.estimate.step_time_s * 1.1
