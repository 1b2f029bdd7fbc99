"""`vpo status --watch`: redraws while something works on the run, ends by itself when the run ends,
and Ctrl-C ends the watch cleanly."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from runtime.rundir import RunDir, held
from vpolang.plan import save_plan

from .conftest import ROOT, env, toy_job, toy_plan


def watch(run_dir, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vpolang.cli", "status", str(run_dir), "--watch", "--interval",
                             "0.1", *args], cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def a_run(tmp_path) -> RunDir:
    plan = toy_plan(tmp_path / "toy.vpo", [toy_job("a"), toy_job("b", deps=("a",))])
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    save_plan(plan, run.plan_path)
    return run


def test_watch_ends_when_the_run_ends(tmp_path):
    run = a_run(tmp_path)
    with held(run.root / ".lock"):  # as `vpo run` holds it
        proc = watch(run.root)
        assert proc.stdout.readline().startswith("run ")
        time.sleep(0.5)
        assert proc.poll() is None  # still watching while the run is held
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "run " in out and "a " in out and "Traceback" not in err


def test_ctrl_c_stops_watching_cleanly(tmp_path):
    run = a_run(tmp_path)
    with held(run.root / ".lock"):
        proc = watch(run.root)
        assert proc.stdout.readline().startswith("run ")  # the first frame: it is watching
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped watching" in out and "Traceback" not in err


def test_watch_is_bounded(tmp_path):
    run = a_run(tmp_path)
    with held(run.root / ".lock"):
        proc = watch(run.root, "--for", "0.5")
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
