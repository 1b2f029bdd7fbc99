"""Content-hash caching: a second run is a no-op; changing the last stage re-runs only it."""
from __future__ import annotations

import time

from .conftest import status, vpo


def test_second_run_is_noop_and_last_stage_change_reruns_only_it(tiny_recipe, tmp_path):
    run_dir = tmp_path / "run"
    recipe = tiny_recipe(steps=4)
    first = vpo("run", recipe, "--run-dir", run_dir, "--progress", "plain")
    assert "sft: done" in first.stderr and "rl: done" in first.stderr

    start = time.time()
    second = vpo("run", recipe, "--run-dir", run_dir, "--progress", "plain")
    assert "sft: cached" in second.stderr and "rl: cached" in second.stderr
    assert "running" not in second.stderr
    assert time.time() - start < 30

    recipe.write_text(recipe.read_text().replace("steps            = 2\n", "steps            = 3\n"))
    third = vpo("run", recipe, "--run-dir", run_dir, "--progress", "plain")
    assert "sft: cached" in third.stderr and "rl: done" in third.stderr
    assert status(run_dir, "rl")["state"] == "done"
    assert len(list((run_dir / "rl").glob("*/status.json"))) == 2  # the earlier result is kept


def test_only_selector_needs_upstream_done(tiny_recipe, tmp_path):
    out = vpo("run", tiny_recipe(steps=4), "--only", "rl", "--run-dir", tmp_path / "r", "--progress", "plain",
              check=False)
    assert out.returncode == 2  # an unusable request, not a failed job
    assert "rl needs the outputs of sft" in out.stderr and "(--only +rl)" in out.stderr
