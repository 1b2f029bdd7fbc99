"""User-facing failures name the recipe line and leave no traceback on the terminal."""
from __future__ import annotations

import math

import pytest

from runtime.context import JobContext
from runtime.errors import JobError
from runtime.rundir import RunDir
from vpolang.api import check_file
from vpolang.lower import lower

from .conftest import status, vpo


def test_nan_loss_names_the_recipe_line_and_keeps_the_checkpoint(tiny_recipe, tmp_path):
    plan = lower(check_file(tiny_recipe()).recipe)
    job = plan.job("sft")
    run = RunDir(tmp_path)
    ctx = JobContext(plan, job, run, run.job(job))
    ctx.dir.root.mkdir(parents=True)
    ctx.checkpoints.save(4, {"w": 1})
    with pytest.raises(JobError) as err:
        ctx.check_finite(math.nan, 6)
    text = str(err.value)
    assert "tiny.vpo:6:1" in text and "nan at step 6" in text and "step 4" in text


def test_missing_data_file_fails_cleanly(tmp_path):
    recipe = tmp_path / "r.vpo"
    recipe.write_text('vpo 0.1\nuse std.shapes\nstage rl = grpo(shapes.tiny_dit) {\n'
                      '  prompts = prompts("missing.txt")\n  reward = shapes.alignment\n  steps = 1\n  lr = 1e-4\n}\n')
    out = vpo("run", recipe, "--run-dir", tmp_path / "run", "--progress", "plain", check=False)
    assert out.returncode == 1
    assert "prompt file" in out.stderr and "missing.txt" in out.stderr and "does not exist" in out.stderr
    assert "Traceback" not in out.stderr
    assert status(tmp_path / "run", "rl")["state"] == "failed"
