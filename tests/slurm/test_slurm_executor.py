"""The slurm executor on a real single-node Slurm: a dependency chain, and a preempted job that resumes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.runtime.conftest import ROOT, TINY, env, job_dir

pytestmark = pytest.mark.slurm

CHAIN = TINY + """
stage pref = dpo(rl) {
  pairs = synthetic(shapes.videos(n = 8, seed = 1), negatives = [reverse])
  steps = 2
  batch = 2
  lr    = 1e-4
}
"""


def vpo_slurm(slurm, *args, check=True, timeout=600):
    e = env()
    e.update(slurm.env)
    out = subprocess.run([sys.executable, "-m", "vpolang.cli", *map(str, args)], capture_output=True, text=True,
                         cwd=ROOT, env=e, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(out.stdout + out.stderr + slurm._logs())
    return out


def test_dependency_chain_runs_in_order(slurm, tmp_path):
    recipe = tmp_path / "chain.vpo"
    recipe.write_text(CHAIN.replace("STEPS", "4"))
    run_dir = tmp_path / "run"
    out = vpo_slurm(slurm, "run", recipe, "--executor", "slurm", "--run-dir", run_dir, "--progress", "plain")
    assert out.stderr.count("submitted") == 4  # sft, rl, pref.pairs.synthetic, pref
    ids = {}
    for job in ("sft", "rl", "pref"):
        status = json.loads((job_dir(run_dir, job) / "status.json").read_text())
        assert status["state"] == "done"
        ids[job] = status
    assert ids["sft"]["finished"] <= ids["rl"]["started"] and ids["rl"]["finished"] <= ids["pref"]["started"]
    again = vpo_slurm(slurm, "run", recipe, "--executor", "slurm", "--run-dir", run_dir, "--progress", "plain")
    assert "submitted" not in again.stderr and again.stderr.count("cached") == 4


def test_preempted_job_is_requeued_and_resumes(slurm, tmp_path):
    recipe = tmp_path / "long.vpo"
    recipe.write_text(TINY.replace("STEPS", "300"))
    run_dir = tmp_path / "run"
    e = env()
    e.update(slurm.env)
    proc = subprocess.Popen([sys.executable, "-m", "vpolang.cli", "run", str(recipe), "--only", "sft", "--executor",
                             "slurm", "--run-dir", str(run_dir), "--progress", "plain"], cwd=ROOT, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = None
    deadline = time.time() + 300
    while time.time() < deadline:
        found = list((run_dir / "sft").glob("*/metrics.jsonl")) if (run_dir / "sft").exists() else []
        if found:
            lines = found[0].read_text().splitlines()
            if lines and json.loads(lines[-1])["step"] >= 10:
                metrics = found[0]
                break
        time.sleep(0.2)
    assert metrics is not None, "the job never got going"
    jobs = slurm.run(["squeue", "-h", "-o", "%i", "-n", "vpo-sft"]).stdout.split()
    assert jobs, "no running slurm job"
    slurm.run(["scancel", "--signal=USR2", jobs[0]])  # what Slurm sends every task before preempting
    deadline = time.time() + 120
    while time.time() < deadline:  # Slurm holds a requeued job for 120 s; release it to keep CI fast
        state = slurm.run(["squeue", "-h", "-j", jobs[0], "-o", "%T %r"], check=False).stdout.split()
        if state[:2] == ["PENDING", "BeginTime"]:
            slurm.run(["scontrol", "update", f"JobId={jobs[0]}", "StartTime=now"])
            break
        time.sleep(0.5)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout + stderr + slurm._logs()
    log = (metrics.parent / "log.txt").read_text()
    assert "resumed from checkpoint at step" in log
    status = json.loads((metrics.parent / "status.json").read_text())
    assert status["state"] == "done" and status["attempts"] >= 2
