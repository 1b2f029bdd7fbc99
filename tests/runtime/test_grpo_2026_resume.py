"""A GRPO job with the 2026 options (a sliding window, CPS, GRPO-Guard, the velocity KL, win rates)
stopped after its first step resumes to the weights of an uninterrupted run, bit for bit: the window's position
and every draw are functions of (seed, step)."""
from __future__ import annotations

import json

from safetensors.torch import load_file

from runtime.context import JobContext
from runtime.main import EXIT_OK, EXIT_STOPPED, run_job
from runtime.rundir import RunDir
from vpolang.plan import save_plan
from vpolang.planning import build_plan

RECIPE = """vpo 0.1
use std.shapes
model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }
reward crisp = weight_free { metric = sharpness }
stage rl = grpo(tiny) {
  prompts          = shapes.prompts(n = 4)
  group_size       = 4
  batch            = 1
  steps            = 2
  sample_steps     = 4
  lr               = 1e-3
  kl               = 0.01
  kl_space         = velocity
  noise            = cps
  guard            = true
  reward_as        = win_rate
  reward           = crisp
  checkpoint_every = 1
  with window { size = 2, shift_every = 1 }
}
"""


def _weights(run_dir, plan):
    folder = RunDir(run_dir).job(plan.job("rl")).root / "artifacts" / "policy"
    return load_file(str(next(folder.glob("*.safetensors"))))


def test_stopped_then_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    recipe = tmp_path / "w.vpo"
    recipe.write_text(RECIPE)
    plan = build_plan(recipe, {}, None)[1]
    save_plan(plan, tmp_path / "plan.json")
    assert run_job(tmp_path / "plan.json", "rl", tmp_path / "straight", handle_signals=False) == EXIT_OK
    expected = _weights(tmp_path / "straight", plan)
    rows = RunDir(tmp_path / "straight").job(plan.job("rl")).metrics_path.read_text().splitlines()
    assert all(json.loads(r)["grad_norm"] > 0 for r in rows)  # every step moves the weights

    metrics = JobContext.metrics

    def preempt_after_step_1(self, step, **values):  # as if preempted after step 1's metrics
        metrics(self, step, **values)
        if step == 1:
            self.request_stop("preempted")

    monkeypatch.setattr(JobContext, "metrics", preempt_after_step_1)
    assert run_job(tmp_path / "plan.json", "rl", tmp_path / "run", handle_signals=False) == EXIT_STOPPED
    monkeypatch.setattr(JobContext, "metrics", metrics)
    assert run_job(tmp_path / "plan.json", "rl", tmp_path / "run", handle_signals=False) == EXIT_OK
    log = RunDir(tmp_path / "run").job(plan.job("rl")).log_path.read_text()
    assert "resumed from checkpoint at step 1" in log  # step 2 runs in the window's second position
    got = _weights(tmp_path / "run", plan)
    assert got.keys() == expected.keys()
    for name in expected:
        assert (got[name] == expected[name]).all(), name
