"""The local executor through `vpo run plan.json`: dependency order, caching by content hash, `--only`,
`--force`, and failures that hold back downstream jobs. (One scenario per test: every job is a process
that imports torch, so the steps share their runs.)"""
from __future__ import annotations

import json

from runtime.rundir import RunDir

from .conftest import chain, run_toy


def states(plan, run_dir):
    run = RunDir(run_dir)
    return {job.id: run.job(job).read_status() for job in plan.jobs}


def started(out) -> set[str]:
    return {line.split("] ")[1].split(":")[0] for line in out.stderr.splitlines() if ": running (" in line}


def test_selection_order_caching_changes_and_force(tmp_path):
    recipe, run_dir = tmp_path / "toy.vpo", tmp_path / "run"
    short = {"steps": 3}
    plan = chain(recipe, a=short, b=short, c=short, d=short)

    # --only b+ needs a, which has not run here: refused before anything starts.
    refused = run_toy(plan, run_dir, "--only", "b+")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: b needs the outputs of a, which is not done for this configuration")
    assert "--only +b" in refused.stderr and not (run_dir / "b").exists()

    # --only a, then the whole plan: a is cached, the rest runs in dependency order.
    assert started(run_toy(plan, run_dir, "--only", "a")) == {"a"}
    whole = run_toy(plan, run_dir)
    assert whole.returncode == 0, whole.stderr
    assert "a: cached" in whole.stderr and started(whole) == {"b", "c", "d"}
    s = states(plan, run_dir)
    assert all(v["state"] == "done" and v["attempts"] == 1 for v in s.values())
    assert s["a"]["finished"] <= s["b"]["started"] and s["b"]["finished"] <= s["c"]["started"]

    # The same plan again does nothing.
    again = run_toy(plan, run_dir)
    assert again.returncode == 0 and again.stderr.count(": cached") == 4 and started(again) == set()

    # Changing b re-runs b and its dependent c only; b's earlier result stays on disk.
    changed = chain(recipe, a=short, b={**short, "lr": 0.1}, c=short, d=short)
    third = run_toy(changed, run_dir)
    assert third.returncode == 0 and started(third) == {"b", "c"}, third.stderr
    assert len(list((run_dir / "b").glob("*/status.json"))) == 2
    assert RunDir(run_dir).current("b") == RunDir(run_dir).job(changed.job("b"))
    assert json.loads((run_dir / "plan.json").read_text())["jobs"][1]["config"]["lr"] == 0.1  # the lock file

    # --force starts a done job afresh, setting its old folder aside.
    forced = run_toy(changed, run_dir, "--only", "d", "--force")
    assert forced.returncode == 0 and started(forced) == {"d"}
    assert len(list((run_dir / "d").glob("*.retired-*/status.json"))) == 1
    assert "resumed" not in RunDir(run_dir).job(changed.job("d")).log_path.read_text()


def test_a_failed_job_holds_back_its_dependents_only(tmp_path):
    plan = chain(tmp_path / "toy.vpo", a={"lr": 100.0}, d={"steps": 2})
    out = run_toy(plan, tmp_path / "run")
    assert out.returncode == 1
    s = states(plan, tmp_path / "run")
    assert s["a"]["state"] == "failed" and s["d"]["state"] == "done"
    assert s["b"]["state"] == "cancelled" and s["b"]["error"] == "not run: it needs a, which did not finish"
    assert s["c"]["state"] == "cancelled" and s["c"]["attempts"] == 0
    assert "a: FAILED - stage `a` (toy.vpo:3:1): loss became inf at step 9" in out.stderr
    assert "Traceback" not in out.stderr
