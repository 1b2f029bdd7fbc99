"""The run directory: the plan lock file and one content-addressed folder per job.

    <run>/plan.json                      the plan last run here (the lock file)
    <run>/<job id>/<hash[:16]>/          one folder per job configuration
        status.json  metrics.jsonl  log.txt  checkpoints/  artifacts/<name>/
    <run>/<job id>/current               the hash folder the last plan used

A job whose folder for its current hash says `done` is skipped. Changing a job gives it a new folder,
so earlier results stay on disk and switching a config back reuses them."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpolang.plan import Job, Plan, write_atomic

STATES = ("pending", "running", "done", "failed", "cancelled")


@dataclass
class JobDir:
    root: Path

    @property
    def status_path(self) -> Path:
        return self.root / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.root / "log.txt"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def artifact(self, name: str) -> Path:
        return self.root / "artifacts" / name

    def read_status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {"state": "pending", "attempts": 0}

    def write_status(self, **changes: Any) -> dict[str, Any]:
        status = self.read_status()
        status.update(changes, updated=time.time())
        write_atomic(self.status_path, json.dumps(status, indent=2, sort_keys=True))
        return status

    def last_metrics(self) -> dict[str, Any] | None:
        try:
            with self.metrics_path.open("rb") as handle:
                handle.seek(0, 2)
                size = handle.tell()
                handle.seek(max(0, size - 4096))
                lines = handle.read().decode(errors="replace").strip().splitlines()
            return json.loads(lines[-1]) if lines else None
        except (OSError, ValueError, IndexError):
            return None


@dataclass
class RunDir:
    root: Path

    @property
    def plan_path(self) -> Path:
        return self.root / "plan.json"

    def job(self, job: Job) -> JobDir:
        return JobDir(self.root / job.id / job.hash[:16])

    def mark_current(self, job: Job) -> None:
        write_atomic(self.root / job.id / "current", job.hash[:16] + "\n")

    def is_done(self, job: Job) -> bool:
        status = self.job(job).read_status()
        return status.get("state") == "done" and status.get("hash") == job.hash

    def artifact_path(self, plan: Plan, job_id: str, name: str) -> Path:
        return self.job(plan.job(job_id)).artifact(name)


def default_run_dir(plan: Plan, base: Path = Path("runs")) -> Path:
    """Stable per recipe (not per plan), so a second run finds the first's work."""
    import hashlib

    key = hashlib.sha256(str(Path(plan.recipe.path).resolve()).encode()).hexdigest()[:8]
    return base / f"{plan.recipe.name}-{key}"
