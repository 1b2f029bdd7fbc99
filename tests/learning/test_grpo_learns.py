"""GRPO raises a reward on held-out prompts, significantly: from an untrained tiny shapes model, 32 steps
against the weight-free sharpness reward lift the held-out samples' sharpness above the untrained model's
95% interval (same prompts, same sampling seeds). The shapes alignment reward is too sparse for this
(see issue 5's note); sharpness is graded on every sample, so the test isolates the RL machinery."""
from __future__ import annotations

import json

import pytest

from tests.runtime.conftest import job_dir, vpo

RECIPE = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 2, hidden = 64, heads = 2, ffn = 128 }

reward crisp = weight_free { metric = sharpness }

stage rl = grpo(tiny) {
  prompts      = shapes.prompts(n = 32, split = train)
  group_size   = 8
  batch        = 4
  steps        = 32
  sample_steps = 6
  lr           = 3e-4
  reward       = crisp
}

stage report = evaluate(rl) {
  against      = [tiny]
  prompts      = shapes.prompts(n = 48, split = test, seed = 5)
  metrics      = [crisp]
  sample_steps = 6
}
"""


@pytest.mark.slow
def test_grpo_raises_a_held_out_reward_beyond_the_untrained_interval(tmp_path):
    recipe = tmp_path / "grpo.vpo"
    recipe.write_text(RECIPE)
    vpo("run", recipe, "--run-dir", tmp_path / "run", "--progress", "quiet")
    metrics = json.loads((job_dir(tmp_path / "run", "report") / "artifacts" / "metrics" / "metrics.json").read_text())
    tuned, base = metrics["models"]["rl"]["crisp"], metrics["models"]["tiny"]["crisp"]
    assert tuned["n"] == base["n"] == 48
    assert tuned["ci95"][0] > base["ci95"][1], (tuned, base)  # the intervals do not overlap
    assert tuned["mean"] - base["mean"] > 0.005, (tuned, base)  # measured: +0.012 and +0.022 (seeds 1, 0)
