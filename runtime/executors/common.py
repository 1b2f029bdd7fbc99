"""What both executors do around a job: skip it when done, hold it back when upstream failed, and record
the outcome of a job that could not record it itself (killed, cancelled before it started)."""
from __future__ import annotations

import time

from vpolang.plan import Job

from ..rundir import RunDir


def failed_upstream(job: Job, failed: set[str]) -> list[str]:
    return [dep for dep in job.depends_on if dep in failed]


def record_not_run(run: RunDir, job: Job, reason: str) -> None:
    """A job held back (its upstream failed or was cancelled): `vpo status` then says why."""
    folder = run.job(job)
    if folder.read_status().get("state") in ("done", "failed"):
        return
    folder.root.mkdir(parents=True, exist_ok=True)
    folder.write_status(state="cancelled", job=job.id, kind=job.kind, hash=job.hash, error=reason,
                        finished=time.time())


def record_lost(run: RunDir, job: Job, message: str) -> str:
    """A job whose process ended without recording an outcome (killed, out of memory, node failure):
    mark it failed. Returns the message to show, preferring what the job recorded itself."""
    folder = run.job(job)
    status = folder.read_status()
    if status.get("state") == "failed" and status.get("error"):
        return status["error"]
    folder.root.mkdir(parents=True, exist_ok=True)
    where = f"stage `{job.stage}`" + (f" ({job.span})" if job.span else "")
    message = f"{where}: {message}"
    folder.write_status(state="failed", job=job.id, kind=job.kind, hash=job.hash, error=message, finished=time.time())
    return message
