"""What a run directory holds, job by job, read defensively: a partial or failed run still reports."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpolang.plan import Job, Plan, PlanVersionError, load_plan
from vpolang.status import one_line, read_status

HASH_CHARS = 16  # the run directory's folder names: the job hash's first 16 characters


class NotARun(ValueError):
    """The directory is not a vpo run directory (no readable plan.json)."""


@dataclass
class Sample:
    policy: str
    prompt: str
    gif: Path


@dataclass
class JobRecord:
    job: Job
    folder: Path
    status: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None
    samples: list[Sample] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.status.get("state", "not started")


@dataclass
class RunRecord:
    root: Path
    plan: Plan
    jobs: list[JobRecord]


def collect_run(run_dir: str | Path) -> RunRecord:
    root = Path(run_dir)
    plan_path = root / "plan.json"
    if not plan_path.is_file():
        raise NotARun(f"{root} is not a vpo run directory (no plan.json); `vpo run` writes one in --run-dir")
    try:
        plan = load_plan(plan_path)
    except (PlanVersionError, ValueError, OSError) as exc:
        raise NotARun(f"{plan_path}: cannot read the plan: {one_line(exc)}") from exc
    return RunRecord(root, plan, [_job(root, job) for job in plan.jobs])


def _job(root: Path, job: Job) -> JobRecord:
    folder = root / job.id / job.hash[:HASH_CHARS]
    status = read_status(folder / "status.json")  # damaged: a warning, and reported as not started
    record = JobRecord(job, folder, status.model_dump() if status else {}, _jsonl(folder / "metrics.jsonl"))
    if job.kind == "evaluate":
        evaluation = _json(folder / "artifacts" / "metrics" / "metrics.json")
        record.evaluation = evaluation if isinstance(evaluation, dict) else None
        samples = folder / "artifacts" / "samples"
        for rec in _jsonl(samples / "index.jsonl"):
            gif = samples / Path(str(rec.get("gif", ""))).name  # only files of the samples folder
            if rec.get("gif") and gif.is_file():
                record.samples.append(Sample(str(rec.get("policy", "")), str(rec.get("prompt", "")), gif))
    return record


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn last line (a job killed mid-write) is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out
