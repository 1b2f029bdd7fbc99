"""`vpo run recipe.vpo` and `vpo status` end to end: the compiler's plan, the default run directory, a
changed last stage re-running alone; and a real trainer's data error reported at the recipe line."""
from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import status, vpo


def test_recipe_runs_in_its_default_run_dir_and_a_changed_last_stage_reruns_alone(tiny_recipe, tmp_path):
    recipe = tiny_recipe(steps=3)  # the toy trainer stands in for sft and grpo
    first = vpo("run", recipe, "--progress", "plain", toy=True, cwd=tmp_path)
    [run_dir] = list((tmp_path / "runs").iterdir())
    assert run_dir.name.startswith("tiny-") and f"run directory: {Path('runs') / run_dir.name}" in first.stderr
    assert "sft: done" in first.stderr and "rl: done" in first.stderr

    recipe.write_text(recipe.read_text().replace("steps            = 2\n", "steps            = 3\n"))
    second = vpo("run", recipe, "--progress", "plain", toy=True, cwd=tmp_path)
    assert "sft: cached" in second.stderr and "rl: running" in second.stderr and "sft: running" not in second.stderr
    assert list((tmp_path / "runs").iterdir()) == [run_dir]  # the same recipe finds its run directory
    assert status(run_dir, "rl")["state"] == "done"

    table = vpo("status", run_dir, cwd=tmp_path).stdout
    for header in ("job", "state", "hash", "attempts", "duration", "last metrics"):
        assert header in table
    rows = [line for line in table.splitlines() if " sft " in line or " rl " in line]
    assert len(rows) == 2 and all(" done " in row and "step 3" in row and "loss" in row for row in rows)


@pytest.mark.slow  # the real GRPO trainer imports diffusers (~10 s)
def test_missing_data_file_fails_cleanly_naming_the_stage(tmp_path):
    recipe = tmp_path / "r.vpo"
    recipe.write_text('vpo 0.1\nuse std.shapes\nstage rl = grpo(shapes.tiny_dit) {\n'
                      '  prompts = prompts("missing.txt")\n  reward = shapes.alignment\n  steps = 1\n  lr = 1e-4\n}\n')
    out = vpo("run", recipe, "--run-dir", tmp_path / "run", "--progress", "plain", check=False)
    assert out.returncode == 1
    assert "missing.txt" in out.stderr and "Traceback" not in out.stderr
    failed = status(tmp_path / "run", "rl")
    assert failed["state"] == "failed" and "missing.txt" in failed["error"]
