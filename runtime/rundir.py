"""The run directory: the plan lock file and one content-addressed folder per job configuration.

    <run>/plan.json                        the plan last run here (the lock file)
    <run>/<job id>/<hash[:16]>/            one folder per configuration of the job
        status.json  metrics.jsonl  log.txt  checkpoints/  artifacts/<name>/  slurm.json
    <run>/<job id>/current                 the hash folder the last successful run used
    <run>/<job id>/<hash[:16]>.retired-<time>/   a folder set aside by `--force`

A job is skipped when the folder for its current hash says `done` and holds every output. Changing a
job gives it a new folder, so earlier results stay on disk and switching a config back reuses them;
a changed job's hash changes the hashes of everything downstream, so they re-run too."""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpolang.atomic import write_text
from vpolang.plan import Job, Plan
from vpolang.safety import PathEscape, contained
from vpolang.status import JobStatus, read_status, updated_status, write_status

HASH_CHARS = 16  # 64 bits: collisions among one job's configurations are not a practical concern


class RunDirBusy(RuntimeError):
    """Another `vpo run` holds the run directory."""


def inside(root: Path, *parts: str) -> Path:
    """root/parts, refused (PathEscape) unless it stays inside root: every path made from plan data
    (job ids, hashes, artifact names, the recipe name, a `current` file) goes through here."""
    return contained(root, root.joinpath(*parts))


class JobBusy(RuntimeError):
    """A live trainer holds the job folder."""


@dataclass(frozen=True)
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

    @property
    def slurm_path(self) -> Path:
        """Where the Slurm executor notes the Slurm job running this folder (kept apart from
        status.json, which only the job itself writes)."""
        return self.root / "slurm.json"

    @property
    def lock_path(self) -> Path:
        """Held by the trainer process itself while it runs (see `hold`)."""
        return self.root / ".job.lock"

    @contextmanager
    def hold(self) -> Iterator[None]:
        """The trainer's lock on its folder: a second trainer (from a second `vpo run`, or one started
        by hand) cannot start while the first lives, even when the `vpo run` that started it is gone."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with held(self.lock_path):
                yield
        except LockHeld as exc:
            raise JobBusy(f"another trainer is running in {self.root} ({exc})") from None

    def holder(self) -> str | None:
        """`pid N on HOST` of the live trainer holding this folder, or None."""
        return holder(self.lock_path)

    def artifact(self, name: str) -> Path:
        return inside(self.root, "artifacts", name)

    def read_status(self) -> dict[str, Any]:
        """The validated status (vpolang/status.py) as a dict; a missing or damaged one reads as
        pending, attempt 0 (damaged: with a warning on stderr)."""
        return (read_status(self.status_path) or JobStatus()).model_dump()

    def write_status(self, **changes: Any) -> dict[str, Any]:
        status = updated_status(read_status(self.status_path, warn=False), {**changes, "updated": time.time()})
        write_status(self.status_path, status)
        return status.model_dump()

    def add_warning(self, message: str) -> None:
        """A warning of this attempt, kept in status.json: `vpo run` shows it in the terminal (the job's
        own stderr goes to log.txt) and `vpo status` lists it."""
        warnings = self.read_status()["warnings"]
        self.write_status(warnings=[*warnings, message])

    @property
    def activity_path(self) -> Path:
        """What the job is doing between steps (sampling rollouts, encoding a dataset, evaluating)."""
        return self.root / "activity.json"

    def write_activity(self, what: str, done: int | None = None, total: int | None = None) -> None:
        """Replaces the job's activity (written whole, then renamed: a reader never sees half of it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.activity_path.with_name(f".activity.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"what": what, "done": done, "total": total, "time": round(time.time(), 3)}))
        os.replace(tmp, self.activity_path)

    def read_activity(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.activity_path.read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) and isinstance(value.get("what"), str) else None

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete record of metrics.jsonl (a torn last line, being written, is skipped)."""
        try:
            lines = self.metrics_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def last_metrics(self) -> dict[str, Any] | None:
        """The last complete record of metrics.jsonl, read from its tail (the file can be large)."""
        try:
            with self.metrics_path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - 8192))
                lines = handle.read().decode(errors="replace").splitlines()
        except OSError:
            return None
        for line in reversed(lines):
            try:
                return json.loads(line)
            except ValueError:  # a record being written, or the cut first line of the tail
                continue
        return None


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def plan_path(self) -> Path:
        return self.root / "plan.json"

    def job(self, job: Job) -> JobDir:
        return JobDir(inside(self.root, job.id, job.hash[:HASH_CHARS]))

    def current(self, job_id: str) -> JobDir | None:
        """The folder the last successful run of this job used (whatever its configuration)."""
        try:
            name = inside(self.root, job_id, "current").read_text().strip()
            return JobDir(inside(self.root / job_id, name)) if name else None
        except (OSError, PathEscape):  # a damaged `current` file names no folder
            return None

    def mark_current(self, job: Job) -> None:
        write_text(inside(self.root, job.id, "current"), job.hash[:HASH_CHARS] + "\n")

    def is_done(self, job: Job) -> bool:
        folder = self.job(job)
        status = folder.read_status()
        return (status.get("state") == "done" and status.get("hash") == job.hash
                and all(folder.artifact(name).exists() for name in job.outputs))

    def artifact_path(self, plan: Plan, job_id: str, name: str) -> Path:
        return self.job(plan.job(job_id)).artifact(name)

    def retire(self, job: Job) -> Path | None:
        """Move a job's folder aside (for `--force`): it starts afresh, the old results stay on disk."""
        folder = self.job(job).root
        if not folder.exists():
            return None
        target = folder.with_name(f"{folder.name}.retired-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        folder.rename(target)
        return target

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One `vpo run` at a time per run directory: two would train the same job into one folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with held(self.root / ".lock"):
                yield
        except LockHeld as exc:
            raise RunDirBusy(f"another `vpo run` is using {self.root} ({exc})") from None

    def running_jobs(self, jobs: list[Job]) -> list[tuple[Job, str]]:
        """The jobs whose folder a live trainer holds (e.g. one left running by a killed `vpo run`),
        each with who holds it."""
        return [(job, holder) for job in jobs if (holder := self.job(job).holder()) is not None]


class LockHeld(RuntimeError):
    """The lock file is held by another live process (the message says which, as it wrote itself)."""


# File systems without flock (some cluster mounts): the lock is then skipped rather than the run refused.
NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}


@contextmanager
def held(path: Path) -> Iterator[None]:
    """An exclusive flock on `path`, with our pid written in it. The kernel releases it when the process
    dies, however it dies (kill -9 included), so a lock is never left stale."""
    with path.open("a+") as handle:
        if not _lock(handle):
            yield
            return
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock(handle) -> bool:
    """True when locked, False on a file system without locks; LockHeld when another process has it."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        raise LockHeld(handle.read().strip() or "pid unknown") from None
    except OSError as exc:
        if exc.errno not in NO_LOCKS:
            raise
        return False
    return True


def holder(path: Path) -> str | None:
    """Who holds the lock on `path` now, or None (a probe: it takes nothing and creates nothing)."""
    try:
        handle = path.open("r")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "pid unknown"
        except OSError:
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def default_run_dir(plan: Plan, base: Path = Path("runs")) -> Path:
    """Stable per recipe file (not per plan), so a second run finds the first's work."""
    key = hashlib.sha256(str(Path(plan.recipe.path).resolve()).encode()).hexdigest()[:8]
    return inside(base, f"{plan.recipe.name}-{key}")
