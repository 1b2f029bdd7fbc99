"""A job killed with SIGKILL mid-training resumes from its last checkpoint to the same weights, bit for bit."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from .conftest import ROOT, env, job_dir, vpo


def weights(run_dir, job="sft"):
    return load_file(str(job_dir(run_dir, job) / "artifacts" / "policy" / "weights.safetensors"))


def test_sigkill_then_resume_equals_uninterrupted(tiny_recipe, tmp_path):
    recipe = tiny_recipe(steps=60)
    vpo("run", recipe, "--only", "sft", "--run-dir", tmp_path / "straight", "--progress", "quiet")
    expected = weights(tmp_path / "straight")

    run_dir = tmp_path / "killed"
    plan_path = tmp_path / "plan.json"
    vpo("plan", recipe, "-o", plan_path)
    run_dir.mkdir()
    (run_dir / "plan.json").write_text(plan_path.read_text())
    job_hash = json.loads(plan_path.read_text())["jobs"][0]["hash"][:16]
    metrics = run_dir / "sft" / job_hash / "metrics.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "runtime.main", "--plan", str(run_dir / "plan.json"),
                             "--job", "sft", "--run-dir", str(run_dir)], cwd=ROOT, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill between the step-8 checkpoint and the end
        lines = metrics.read_text().splitlines() if metrics.exists() else []
        if lines and json.loads(lines[-1])["step"] >= 9:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert not (run_dir / "sft" / job_hash / "artifacts" / "policy").exists()

    out = vpo("run", recipe, "--only", "sft", "--run-dir", run_dir, "--progress", "plain")
    log = (run_dir / "sft" / job_hash / "log.txt").read_text()
    resumed_at = [int(line.rsplit(" ", 1)[1]) for line in log.splitlines() if "resumed from checkpoint at step" in line]
    assert resumed_at and 8 <= resumed_at[0] < 60 and resumed_at[0] % 4 == 0, out.stderr
    resumed = weights(run_dir)
    assert resumed.keys() == expected.keys()
    for name in expected:
        assert torch.equal(resumed[name], expected[name]), name
