"""What a run shows while it goes: the pipeline (jobs done of total) and each running job (step, loss,
reward, ETA, read from its metrics.jsonl).

Modes: `rich` (live bars, for a terminal), `plain` (one line per event and a step line every few
seconds, for logs and CI), `quiet` (only failures). `auto` picks rich on a terminal, plain otherwise;
colour only ever goes to a terminal."""
from __future__ import annotations

import sys
import time
from typing import Any

from vpolang.plan import Job

from .rundir import JobDir

MODES = ("auto", "rich", "plain", "quiet")
PLAIN_STEP_EVERY_S = 10.0
ALARMS_EVERY_S = 5.0  # how often a running job's metric stream is read whole for health alarms
SHOWN_METRICS = 3


def summarize(record: dict[str, Any]) -> str:
    """`loss 0.123 reward 0.5 ...`: loss and rewards first, then other numbers, at most a few."""
    numbers = {k: v for k, v in record.items() if k not in ("step", "time") and isinstance(v, (int, float))}
    first = [k for k in numbers if k == "loss" or "reward" in k]
    keys = (first + [k for k in numbers if k not in first])[:SHOWN_METRICS]
    return " ".join(f"{k} {numbers[k]:.4g}" for k in keys)


def activity_text(activity: dict[str, Any], counts: bool = True) -> str:
    """`sampling rollouts 3/8` (or without the counts, which change too often for a plain log)."""
    what, done, total = activity.get("what", ""), activity.get("done"), activity.get("total")
    if counts and isinstance(done, int) and isinstance(total, int) and total > 0:
        return f"{what} {done}/{total}"
    return str(what)


def total_steps(job: Job) -> int | None:
    steps = getattr(job.config, "steps", None)  # training kinds with `steps`; None: set by `epochs`, or none
    return steps if steps else None


class StepRate:
    """Steps per second over what this process has seen of a job (a resumed job starts mid-way)."""

    def __init__(self):
        self.first: dict[str, tuple[int, float]] = {}

    def eta_s(self, job_id: str, step: int, at: float, total: int | None) -> float | None:
        first_step, first_time = self.first.setdefault(job_id, (step, at))
        if not total or step <= first_step or at <= first_time:
            return None
        return (total - step) * (at - first_time) / (step - first_step)


class Progress:
    def __init__(self, mode: str = "auto", total: int = 0):
        if mode not in MODES:
            raise ValueError(f"progress must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = ("rich" if sys.stderr.isatty() else "plain") if mode == "auto" else mode
        self.total = total
        self.done = 0
        self.rate = StepRate()
        self._started: dict[str, float] = {}
        self._last_line: dict[str, float] = {}
        self._last_step: dict[str, int] = {}
        self._seen_activities: dict[str, set[str]] = {}
        self._warned: dict[str, int] = {}
        self._alarm_checked: dict[str, float] = {}
        self._alarmed: dict[str, set[str]] = {}
        self._bars = _RichBars(total) if self.mode == "rich" else None

    def __enter__(self) -> "Progress":
        if self._bars:
            self._bars.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bars:
            self._bars.stop()

    # ---- events
    def cached(self, job: Job) -> None:
        self._advance()
        self._say(job, "cached")

    def started(self, job: Job, detail: str = "") -> None:
        self._started[job.id] = time.time()
        self._say(job, f"running ({job.kind}{', ' + detail if detail else ''})")
        if self._bars:
            self._bars.add_job(job, total_steps(job))

    def note(self, job: Job, what: str) -> None:
        self._say(job, what)

    def finished(self, job: Job, folder: JobDir | None = None) -> None:
        if folder is not None:
            self.alarms(job, folder, force=True)
        self._advance()
        took = time.time() - self._started.get(job.id, time.time())
        self._say(job, f"done in {took:.0f}s")
        if self._bars:
            self._bars.remove_job(job)

    def failed(self, job: Job, message: str, folder: JobDir | None = None) -> None:
        where = f"\n    log: {folder.log_path}" if folder else ""
        self._say(job, f"FAILED - {message}{where}", always=True)
        if folder is not None:
            self.alarms(job, folder, force=True)
        if self._bars:
            self._bars.remove_job(job)

    def tick(self, job: Job, folder: JobDir) -> None:
        """Called often while a job runs; reads its latest metrics and activity (what it does between
        steps: rollouts, encoding, evaluation), and shows the warnings it recorded and the
        health alarms its metrics raise. Plain mode prints a
        line only when something changed: a new step (at most every PLAIN_STEP_EVERY_S) or an activity not
        shown before for this job."""
        self._warnings(job, folder)
        self.alarms(job, folder)
        record = folder.last_metrics()
        activity = folder.read_activity()
        step = int(record["step"]) if record and "step" in record else None
        total = total_steps(job)
        if self._bars:
            self._bars.update_job(job, step, summarize(record) if step is not None else "", activity, total)
            return
        if self.mode != "plain":
            return
        what = activity_text(activity, counts=False) if activity else None
        seen = self._seen_activities.setdefault(job.id, set())
        if what and what not in seen:  # a kind of work not shown before (a step's phases recur every step)
            seen.add(what)
            print(f"    {job.id}: {what}", file=sys.stderr, flush=True)
        if step is None or step == self._last_step.get(job.id):
            return
        if time.time() - self._last_line.get(job.id, 0.0) < PLAIN_STEP_EVERY_S and step != total:
            return
        self._last_line[job.id], self._last_step[job.id] = time.time(), step
        eta = self.rate.eta_s(job.id, step, float(record.get("time", time.time())), total)
        steps = f"{step}/{total}" if total else str(step)
        eta_text = f" eta {eta:.0f}s" if eta is not None else ""
        print(f"    {job.id}: step {steps}{eta_text}  {summarize(record)}", file=sys.stderr, flush=True)

    def alarms(self, job: Job, folder: JobDir, force: bool = False) -> None:
        """Each health alarm (vpolang/health.py) of the job's metrics, shown once when first raised."""
        from vpolang.health import alarms

        now = time.time()
        if not force and now - self._alarm_checked.get(job.id, 0.0) < ALARMS_EVERY_S:
            return
        self._alarm_checked[job.id] = now
        seen = self._alarmed.setdefault(job.id, set())
        for alarm in alarms(folder.read_metrics(), job.config):
            if alarm.code not in seen:
                seen.add(alarm.code)
                self._say(job, alarm.text(), always=True)

    def _warnings(self, job: Job, folder: JobDir) -> None:
        warnings = folder.read_status()["warnings"]
        shown = self._warned.get(job.id, 0)
        if len(warnings) < shown:  # a new attempt started its own list
            shown = 0
        for message in warnings[shown:]:
            self._say(job, f"warning: {message}", always=True)
        self._warned[job.id] = len(warnings)

    # ---- output
    def _advance(self) -> None:
        self.done += 1
        if self._bars:
            self._bars.advance()

    def _say(self, job: Job, what: str, always: bool = False) -> None:
        if self.mode == "quiet" and not always:
            return
        line = f"[{self.done}/{self.total}] {job.id}: {what}"
        if self._bars:
            self._bars.print(line)
        else:
            print(line, file=sys.stderr, flush=True)


class _RichBars:
    """Live bars on stderr: the pipeline, and one bar per running job with its latest metrics."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.console = Console(stderr=True)
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"),
                             console=self.console, transient=False)
        self.pipeline = self.bars.add_task("pipeline", total=total, metrics="")
        self.jobs: dict[str, Any] = {}

    def start(self) -> None:
        self.bars.start()

    def stop(self) -> None:
        self.bars.stop()

    def print(self, line: str) -> None:
        self.bars.console.print(line, highlight=False, markup=False)

    def advance(self) -> None:
        self.bars.advance(self.pipeline)

    def add_job(self, job: Job, total: int | None) -> None:
        self.jobs[job.id] = self.bars.add_task(f"  {job.id}", total=total, metrics="")

    def update_job(self, job: Job, step: int | None, metrics: str, activity: dict[str, Any] | None = None,
                   total: int | None = None) -> None:
        """The job's bar: its steps when it has them (the activity shown beside the metrics), else the
        activity's own counts (an evaluation's batches, a dataset's encoding)."""
        if job.id not in self.jobs:
            return
        task = self.jobs[job.id]
        doing = activity_text(activity) if activity else ""
        if step is not None and total:
            self.bars.update(task, completed=step, total=total, metrics=" ".join(x for x in (doing, metrics) if x))
        elif activity and isinstance(activity.get("total"), int) and activity["total"] > 0:
            self.bars.update(task, completed=activity.get("done") or 0, total=activity["total"], metrics=doing)
        else:
            self.bars.update(task, completed=step or 0, metrics=" ".join(x for x in (doing, metrics) if x))

    def remove_job(self, job: Job) -> None:
        task = self.jobs.pop(job.id, None)
        if task is not None:
            self.bars.remove_task(task)
