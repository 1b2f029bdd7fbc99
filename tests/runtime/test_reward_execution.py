"""The execution block's `reward_execution` is the plan's decision and the runtime's instruction: the
planner chooses concurrent threads (one CUDA stream per reward) on GPUs where one call scores several
rewards, else serial; every scoring call of the trainers runs in that mode, whatever device it is on."""
from __future__ import annotations

import torch

from runtime.context import JobContext
from runtime.rewards import concurrent
from runtime.rundir import RunDir
from runtime.trainers.grpo_advantages import score_rollouts
from vpolang.planning import build_plan

RECIPE = """vpo 0.1
use std.shapes
CLUSTER
stage rl = grpo(shapes.tiny_dit) ON {
  prompts    = shapes.prompts(n = 4)
  reward     = REWARD
  group_size = 2
  batch      = 2
  lr         = 1e-5
}
"""
GPU = "cluster box = local { gpu = \"H100-80GB\", gpus_per_node = 1 }"


def planned(tmp_path, reward: str, gpu: bool):
    text = RECIPE.replace("REWARD", reward).replace("CLUSTER", GPU if gpu else "").replace(" ON", " on box" if gpu else "")
    (tmp_path / "r.vpo").write_text(text)
    result, plan = build_plan(tmp_path / "r.vpo", {}, None)
    assert result.ok, [d.message for d in result.diagnostics]
    return plan


def test_the_planner_runs_several_rewards_concurrently_on_gpus_only(tmp_path):
    two = "shapes.alignment + 0.5 * shapes.flicker"
    assert planned(tmp_path, two, gpu=True).job("rl").execution.reward_execution == "threads"
    assert planned(tmp_path, two, gpu=False).job("rl").execution.reward_execution == "serial"
    assert planned(tmp_path, "shapes.alignment", gpu=True).job("rl").execution.reward_execution == "serial"


def test_grpo_scores_its_rollouts_in_the_blocks_mode(tmp_path, monkeypatch):
    plan = planned(tmp_path, "shapes.alignment + 0.5 * shapes.flicker", gpu=False)
    job = plan.job("rl")
    run = RunDir(tmp_path / "run")
    ctx = JobContext(plan, job, run, run.job(job))
    modes, real = [], concurrent.run_rewards

    def recording(rewards, videos, prompts, mode="serial", *args, **kwargs):
        modes.append(mode)
        return real(rewards, videos, prompts, mode, *args, **kwargs)

    monkeypatch.setattr(concurrent, "run_rewards", recording)
    videos = torch.rand(2, 8, 3, 16, 16) * 2 - 1
    prompts = ["a red circle moving left"] * 2
    serial = score_rollouts(job.config, videos, prompts, ctx)
    job.execution.reward_execution = "threads"  # what the planner writes for a GPU placement
    threads = score_rollouts(job.config, videos, prompts, ctx)
    assert modes == ["serial", "threads"]
    assert torch.equal(serial.heads, threads.heads)  # the same scores, only overlapped
