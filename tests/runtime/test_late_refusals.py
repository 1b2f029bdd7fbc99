"""Refusals the compiler's preflight makes at the recipe line stay in the runtime too, for plans edited by
hand: they stop the job before any work, naming the stage's line (not at step K)."""
from __future__ import annotations

import pytest

from runtime.context import JobContext
from runtime.errors import JobError
from runtime.rundir import RunDir
from runtime.trainers import dpo
from vpolang.api import check_source
from vpolang.lower import lower
from vpolang.source import SourceFile

RECIPE = """vpo 0.1
use std.shapes
stage pref = dpo(shapes.tiny_dit) {
  pairs     = online(shapes.prompts(n = 4), judges = [shapes.alignment])
  reference = refresh(every = 2)
  steps     = 4
  lr        = 1e-5
}
"""


def test_lora_with_reference_refresh_stops_before_training(tmp_path):
    result = check_source(SourceFile("r.vpo", RECIPE, tmp_path / "r.vpo"))
    assert result.ok, [d.message for d in result.diagnostics]
    plan = lower(result.recipe)
    job = plan.job("pref")
    job.config.lora_rank = 4  # what the preflight rejects as E0315, written into the plan by hand
    run = RunDir(tmp_path / "run")
    ctx = JobContext(plan, job, run, run.job(job))
    with pytest.raises(JobError, match=r"stage `pref` \(r.vpo:3:1\): `reference = refresh\(...\) with LoRA`"):
        dpo.run(ctx)
    assert not ctx.checkpoints.latest_valid()
