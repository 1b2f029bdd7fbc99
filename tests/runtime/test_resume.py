"""Interrupted jobs resume from their latest checkpoint and end with the weights of an uninterrupted run,
bit for bit: after SIGKILL (from the last periodic checkpoint) and after Ctrl-C (from the checkpoint
written on the way out)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from runtime import registry
from runtime.main import run_job
from runtime.rundir import RunDir
from vpolang.plan import save_plan

from . import toy
from .conftest import ROOT, assert_same_weights, env, run_toy, toy_job, toy_plan, toy_run_command, weights

STEPS = 30


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    return toy_plan(folder / "toy.vpo", [toy_job("a", steps=STEPS, checkpoint_every=4, step_sleep=0.05)])


@pytest.fixture(scope="module")
def uninterrupted(plan, tmp_path_factory):
    """The reference, trained in this process (the job entry is the same code either way)."""
    folder = tmp_path_factory.mktemp("straight")
    save_plan(plan, folder / "plan.json")
    saved = registry.TRAINERS["sft"]
    registry.register("sft", toy.run)
    try:
        assert run_job(folder / "plan.json", "a", folder / "run", handle_signals=False) == 0
    finally:
        registry.register("sft", saved)
    return weights(RunDir(folder / "run").job(plan.job("a")).root)


def wait_for_step(folder, step: int, proc: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        record = folder.last_metrics()
        if record and record["step"] >= step:
            return record["step"]
        time.sleep(0.02)
    raise AssertionError(f"the job never reached step {step} (exit code {proc.poll()})")


def resumed_from(log_text: str) -> list[int]:
    return [int(line.rsplit(" ", 1)[1]) for line in log_text.splitlines() if "resumed from checkpoint at step" in line]


def test_sigkill_mid_training_then_resume_equals_uninterrupted(plan, uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    save_plan(plan, tmp_path / "plan.json")
    folder = RunDir(run_dir).job(plan.job("a"))
    proc = subprocess.Popen([sys.executable, "-m", "runtime.main", "--plan", str(tmp_path / "plan.json"),
                             "--job", "a", "--run-dir", str(run_dir)], cwd=ROOT, env=env(toy=True),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_step(folder, 10, proc)  # past the step-8 checkpoint
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert folder.read_status()["state"] == "running" and not folder.artifact("policy").exists()

    out = run_toy(plan, run_dir)
    assert out.returncode == 0, out.stderr
    [step] = resumed_from(folder.log_path.read_text())
    assert 8 <= step < STEPS and step % 4 == 0
    assert folder.read_status()["attempts"] == 2
    assert_same_weights(weights(folder.root), uninterrupted)


def test_ctrl_c_checkpoints_stops_cleanly_and_resumes_there(plan, uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    folder = RunDir(run_dir).job(plan.job("a"))
    cli = subprocess.Popen(toy_run_command(plan, run_dir), cwd=ROOT, env=env(toy=True), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    wait_for_step(folder, 6, cli)
    cli.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C does to the foreground `vpo run`
    _, err = cli.communicate(timeout=120)
    assert cli.returncode == 130, err
    status = folder.read_status()
    assert status["state"] == "cancelled" and status["stop_reason"] == "interrupted"
    stopped_at = folder.last_metrics()["step"]
    assert (folder.checkpoints / f"step-{stopped_at:08d}").is_dir()  # written on the way out
    assert "interrupted" in err and "Traceback" not in err

    out = run_toy(plan, run_dir)
    assert out.returncode == 0, out.stderr
    assert resumed_from(folder.log_path.read_text()) == [stopped_at]
    assert_same_weights(weights(folder.root), uninterrupted)
