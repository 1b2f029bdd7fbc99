"""Run jobs as subprocesses on this machine, one after another in dependency order."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from vpolang.plan import Job, Plan

from ..progress import Progress
from ..rundir import RunDir


def run_local(plan: Plan, jobs: list[Job], run: RunDir, progress: Progress, force: bool = False) -> int:
    failed: set[str] = set()
    for job in jobs:
        blocked = [d for d in job.depends_on if d in failed or not _dep_ready(plan, run, d, jobs)]
        if blocked:
            progress.event(job, "skipped", f"waits on {', '.join(blocked)}")
            failed.add(job.id)
            continue
        if run.is_done(job) and not force:
            progress.event(job, "cached", "")
            run.mark_current(job)
            continue
        code = _run_one(plan, job, run, progress)
        if code != 0:
            failed.add(job.id)
            if code == 130:
                return 130
    return 1 if failed else 0


def _dep_ready(plan: Plan, run: RunDir, dep: str, selected: list[Job]) -> bool:
    """A dependency outside the selection must already be done."""
    if any(j.id == dep for j in selected):
        return True
    return run.is_done(plan.job(dep))


def _run_one(plan: Plan, job: Job, run: RunDir, progress: Progress) -> int:
    cmd = [sys.executable, "-m", "runtime.main", "--plan", str(run.plan_path), "--job", job.id,
           "--run-dir", str(run.root)]
    jd = run.job(job)
    jd.root.mkdir(parents=True, exist_ok=True)
    progress.start(job, jd)
    with jd.log_path.open("a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.PIPE, text=True, cwd=Path.cwd())
        try:
            while proc.poll() is None:
                progress.tick(job, jd)
                time.sleep(0.5)
        except KeyboardInterrupt:
            proc.terminate()  # the job checkpoints on SIGTERM and exits; a later run resumes it
            proc.wait()
            progress.event(job, "stopped", "interrupted; `vpo run` again to resume")
            return 130
        err = proc.stderr.read() if proc.stderr else ""
    status = jd.read_status()
    if proc.returncode == 0:
        progress.finish(job, jd)
    else:
        message = status.get("error") or err.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        progress.fail(job, message if isinstance(message, str) else message[0], jd)
    return proc.returncode
