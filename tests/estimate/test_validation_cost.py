"""`with validate` is planned at its cost: every validation samples and scores the held-out prompts."""
from __future__ import annotations

from pathlib import Path

from vpolang.planning import build_plan

RECIPE = """vpo 0.1
use std.models
use std.rewards
cluster h100 = slurm {{ gpu = "H100-80GB", gpus_per_node = 8 }}
dataset train = prompts("p.txt")
stage rl = grpo(models.wan21_t2v_1_3b) on h100 {{
  prompts = train
  steps   = 100
  lr      = 1e-5
  reward  = rewards.aesthetic
  {validate}
}}
"""


def hours(tmp_path: Path, validate: str) -> float:
    (tmp_path / "p.txt").write_text("".join(f"prompt {i}\n" for i in range(64)))
    recipe = tmp_path / "r.vpo"
    recipe.write_text(RECIPE.format(validate=validate))
    result, plan = build_plan(recipe, {}, None)
    assert plan is not None, [d.message for d in result.diagnostics]
    return plan.job("rl").estimate.hours


def test_validation_adds_its_sampling_and_scoring_per_validation(tmp_path):
    none = hours(tmp_path, "")
    every = {n: hours(tmp_path, f"with validate {{ every = {n}, prompts = train, metrics = [rewards.aesthetic] }}")
             for n in (10, 20)}
    # 10 and 5 validations of the same 64 prompts: twice the added time
    assert every[10] > every[20] > none
    assert abs((every[10] - none) / (every[20] - none) - 2.0) < 1e-6
    cheaper = hours(tmp_path, "with validate { every = 10, prompts = train, metrics = [rewards.aesthetic], "
                              "sample_steps = 10 }")
    assert none < cheaper < every[10]  # fewer sampler steps per validation sample


def test_validation_rewards_are_planned_in_memory(tmp_path):
    (tmp_path / "p.txt").write_text("a prompt\n")

    def memory(validate: str) -> float:
        recipe = tmp_path / "m.vpo"
        recipe.write_text(RECIPE.replace("rewards.aesthetic\n", "rewards.flow_magnitude\n").format(validate=validate))
        result, plan = build_plan(recipe, {}, None)
        assert plan is not None, [d.message for d in result.diagnostics]
        return plan.job("rl").estimate.peak_memory_gib

    # a weight-free training reward; a CLIP-L aesthetic scorer only for validation
    assert memory("with validate { every = 10, prompts = train, metrics = [rewards.aesthetic] }") > memory("")
