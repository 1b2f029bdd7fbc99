"""No two trainers on one job folder, with real processes on a tiny std.shapes recipe: the trainer holds
a lock on its folder (released by the kernel however it dies); `vpo run` stopping for any reason stops
its job (kill -9 included: a parent-death signal); and a trainer that outlived its `vpo run` anyway
makes the next `vpo run` refuse rather than start a second one beside it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime.main import EXIT_BUSY
from runtime.rundir import JobDir

from .conftest import ROOT, env, vpo

STEPS = 5000  # far more than the test waits for: the job is stopped, never finished


def running_folder(run_dir: Path, proc: subprocess.Popen, step: int = 2, timeout: float = 300) -> JobDir:
    """The sft job's folder once its trainer has reached `step` (the job was started by `proc`)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        for status in run_dir.glob("sft/*/status.json"):
            folder = JobDir(status.parent)
            record = folder.last_metrics()
            if record and record.get("step", 0) >= step and folder.read_status()["state"] == "running":
                return folder
        time.sleep(0.2)
    raise AssertionError(f"the sft job never reached step {step} (exit code {proc.poll()})")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has died
    except FileNotFoundError:
        return False


def wait_dead(pid: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not alive(pid), f"the job process {pid} outlived its `vpo run`"


def trainer(run_dir: Path, **kwargs) -> subprocess.Popen:
    """A trainer started by hand on the run's job, as an orphan of a killed `vpo run` would be running."""
    return subprocess.Popen([sys.executable, "-m", "runtime.main", "--plan", str(run_dir / "plan.json"),
                             "--job", "sft", "--run-dir", str(run_dir)], cwd=ROOT, env=env(), **kwargs)


def test_kill_9_of_vpo_run_stops_its_job_and_a_second_trainer_cannot_start(tiny_recipe, tmp_path):
    run_dir = tmp_path / "run"
    cli = subprocess.Popen([sys.executable, "-m", "vpolang.cli", "run", str(tiny_recipe(steps=STEPS)), "--only",
                            "sft", "--run-dir", str(run_dir), "--progress", "plain"], cwd=ROOT, env=env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = running_folder(run_dir, cli)
    pid = folder.read_status()["pid"]
    try:
        assert folder.holder() == f"pid {pid} on {os.uname().nodename}"
        second = trainer(run_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, err = second.communicate(timeout=120)
        assert second.returncode == EXIT_BUSY, err
        assert f"another trainer is running in {folder.root} (pid {pid} on" in err and "Traceback" not in err
        assert folder.read_status()["attempts"] == 1 and folder.read_status()["pid"] == pid  # left to the first

        cli.send_signal(signal.SIGKILL)
        assert cli.wait() == -signal.SIGKILL
        wait_dead(pid)  # the kernel told it (SIGTERM): it checkpointed and stopped
    finally:  # never leave an orphan training behind a failed test
        cli.kill()
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    status = folder.read_status()
    assert status["state"] == "pending" and status["stop_reason"] == "terminated"
    assert folder.holder() is None  # released with the process
    stopped_at = folder.last_metrics()["step"]
    assert (folder.checkpoints / f"step-{stopped_at:08d}").is_dir()


def test_vpo_run_refuses_while_an_orphan_trainer_holds_the_job(tiny_recipe, tmp_path):
    recipe = tiny_recipe(steps=STEPS)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    vpo("plan", recipe, "-o", run_dir / "plan.json")
    orphan = trainer(run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        folder = running_folder(run_dir, orphan)
        out = subprocess.run([sys.executable, "-m", "vpolang.cli", "run", str(recipe), "--only", "sft", "--run-dir",
                              str(run_dir), "--progress", "plain"], capture_output=True, text=True, cwd=ROOT,
                             env=env(), timeout=300)
        assert out.returncode == 2, out.stderr
        assert f"a trainer from an earlier `vpo run` is still running: sft (pid {orphan.pid} on" in out.stderr
        assert folder.read_status()["attempts"] == 1 and orphan.poll() is None  # untouched, still training
    finally:
        orphan.kill()
        orphan.wait()
    assert folder.holder() is None
