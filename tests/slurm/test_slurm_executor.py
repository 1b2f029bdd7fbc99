"""The Slurm executor on a real single-node Slurm: a dependency chain in order, a failure that cancels its
dependents, and a preempted job that is requeued and resumes to the same weights."""
from __future__ import annotations

import json
import subprocess
import time

import pytest
import torch

from runtime import registry
from runtime.main import run_job
from runtime.rundir import RunDir
from tests.runtime import toy
from tests.runtime.conftest import (ROOT, assert_same_weights, env, toy_job, toy_plan, toy_run_command,
                                    weights)
from vpolang.plan import save_plan

pytestmark = pytest.mark.slurm


def chain3(tmp_path, **a_config):
    a_config = {"steps": 3, **a_config}
    return toy_plan(tmp_path / "toy.vpo", [toy_job("a", executor="slurm", line=3, **a_config),
                                           toy_job("b", "grpo", ("a",), executor="slurm", line=8, steps=3),
                                           toy_job("c", "dpo", ("b",), executor="slurm", line=13, steps=3)])


def vpo_run(slurm, plan, run_dir, *args, timeout=300):
    out = subprocess.run(toy_run_command(plan, run_dir, *args), capture_output=True, text=True, cwd=ROOT,
                         env=env(True, SLURM_CONF=slurm.env["SLURM_CONF"]), timeout=timeout)
    return out


def test_dependency_chain_runs_in_order_then_is_cached(slurm, tmp_path):
    plan, run_dir = chain3(tmp_path), tmp_path / "run"
    out = vpo_run(slurm, plan, run_dir)
    assert out.returncode == 0, out.stderr + slurm.logs()
    run = RunDir(run_dir)
    s = {job.id: run.job(job).read_status() for job in plan.jobs}
    assert all(v["state"] == "done" for v in s.values())
    assert s["a"]["finished"] <= s["b"]["started"] and s["b"]["finished"] <= s["c"]["started"]
    ids = [json.loads(run.job(job).slurm_path.read_text())["job_id"] for job in plan.jobs]
    assert len(set(ids)) == 3
    [script] = run_dir.glob(f"submitit/*/{ids[2]}_submission.sh")
    assert f"#SBATCH --dependency=afterok:{ids[1]}\n" in script.read_text()
    # A job's outputs are final before its Slurm step exits (submitit still pickles the result), so
    # `vpo run` may return while the last job is accounted RUNNING for a moment.
    def accounted():
        out = slurm.run(["sacct", "-n", "-X", "-j", ",".join(ids), "-o", "JobID,State"]).stdout
        return out if out.count("COMPLETED") == 3 else None
    wait_until(accounted, timeout=60, every=0.5)

    again = vpo_run(slurm, plan, run_dir)
    assert again.returncode == 0 and again.stderr.count(": cached") == 3 and "Slurm job" not in again.stderr


def test_a_failed_job_cancels_its_dependents(slurm, tmp_path):
    plan, run_dir = chain3(tmp_path, lr=100.0, steps=12), tmp_path / "run"
    out = vpo_run(slurm, plan, run_dir)
    assert out.returncode == 1
    run = RunDir(run_dir)
    a, b, c = (run.job(job).read_status() for job in plan.jobs)
    assert a["state"] == "failed" and a["error"].startswith("stage `a` (toy.vpo:3:1): loss became inf at step 9")
    assert b["state"] == c["state"] == "cancelled" and b["error"] == "not run: it needs a, which did not finish"
    assert "a: FAILED - stage `a` (toy.vpo:3:1)" in out.stderr


def test_preempted_job_is_requeued_and_resumes_to_the_same_weights(slurm, tmp_path, monkeypatch):
    plan = toy_plan(tmp_path / "toy.vpo", [toy_job("a", executor="slurm", steps=60, step_sleep=0.05)])
    run_dir = tmp_path / "run"
    folder = RunDir(run_dir).job(plan.job("a"))
    cli = subprocess.Popen(toy_run_command(plan, run_dir), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env(True, SLURM_CONF=slurm.env["SLURM_CONF"]))
    slurm_id = wait_until(lambda: folder.slurm_path.exists() and json.loads(folder.slurm_path.read_text())["job_id"])
    wait_until(lambda: (folder.last_metrics() or {}).get("step", 0) >= 10)
    slurm.run(["scancel", "--signal=USR2", slurm_id])  # what Slurm sends before preempting or at the time limit
    wait_until(lambda: folder.read_status().get("stop_reason") == "preempted")
    stopped_at = folder.last_metrics()["step"]
    # Slurm holds the requeued job back for the credential lifetime (10 s on the test cluster), then starts it.
    out, err = cli.communicate(timeout=300)
    assert cli.returncode == 0, err + slurm.logs()

    status = folder.read_status()
    assert status["state"] == "done" and status["attempts"] == 2
    log = folder.log_path.read_text()
    assert f"resumed from checkpoint at step {stopped_at}" in log and "stopped (preempted)" in log
    assert stopped_at < 60

    save_plan(plan, tmp_path / "plan.json")
    monkeypatch.setitem(registry.TRAINERS, "sft", toy.run)
    assert run_job(tmp_path / "plan.json", "a", tmp_path / "straight", handle_signals=False) == 0
    assert_same_weights(weights(folder.root), weights(RunDir(tmp_path / "straight").job(plan.job("a")).root))


def wait_until(condition, timeout: float = 240, every: float = 0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def test_a_two_task_job_trains_as_one_process_would(slurm, tmp_path, monkeypatch):
    """Two Slurm tasks (rehearsed on CPUs) join one process group from Slurm's environment and take the
    steps one process takes on the same global batch."""
    plan = toy_plan(tmp_path / "toy.vpo", [toy_job("a", executor="slurm", gpus=2, steps=6, batch=16)])
    out = subprocess.run(toy_run_command(plan, tmp_path / "two"), capture_output=True, text=True, cwd=ROOT,
                         env=env(True, SLURM_CONF=slurm.env["SLURM_CONF"], VPO_DEVICE="cpu"), timeout=300)
    assert out.returncode == 0, out.stderr + slurm.logs()
    folder = RunDir(tmp_path / "two").job(plan.job("a"))
    log = folder.log_path.read_text()
    assert "rank 0 of 2, device cpu" in log and "rank 1 of 2, device cpu" in log, log
    [script] = (tmp_path / "two").glob("submitit/*/*_submission.sh")
    assert "#SBATCH --ntasks-per-node=2\n" in script.read_text()

    one = toy_plan(tmp_path / "toy.vpo", [toy_job("a", steps=6, batch=16)])
    save_plan(one, tmp_path / "one.json")
    monkeypatch.setitem(registry.TRAINERS, "sft", toy.run)
    assert run_job(tmp_path / "one.json", "a", tmp_path / "one", handle_signals=False) == 0
    expected = weights(RunDir(tmp_path / "one").job(one.job("a")).root)
    for name, value in weights(folder.root).items():
        torch.testing.assert_close(value, expected[name])
