"""Run jobs on Slurm through submitit: one Slurm job per plan job, `afterok` dependencies, resources from
the placement, and requeue on preemption or time limit.

Each Slurm task runs `PlanJobRunner`, which runs the plan job in a worker thread so that the main thread
stays free for Slurm's signal. On SIGUSR2 (sent before preemption and before the time limit) submitit
calls `PlanJobRunner.checkpoint`: it asks the job to checkpoint and stop, waits for it, and hands back a
fresh runner that submitit requeues; the next attempt resumes from that checkpoint.

Every submission gets a fresh submitit folder holding a snapshot of the plan it runs, so jobs still
queued from an earlier `vpo run` are not changed under them when the recipe changes. A job still queued
or running in Slurm for the same configuration is watched again rather than submitted twice."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from vpolang.atomic import write_bytes, write_text
from vpolang.plan import Job, Plan
from vpolang.safety import DOTTED, UnsafeText, check_placement, identifier_problem, path_text_problem

from ..progress import Progress
from ..rundir import JobDir, RunDir
from .common import failed_upstream, record_lost, record_not_run

POLL_S = 5.0
SIGNAL_DELAY_S = 120  # how long before the end Slurm warns a job: time to write a checkpoint
STOP_GRACE_S = SIGNAL_DELAY_S - 30
DEFAULT_TIME_MIN = 3 * 24 * 60  # when neither the recipe nor the partition sets a limit
FAILED_STATES = {"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"}
LIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING",
               "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "PREEMPTED"}


class JobFailed(RuntimeError):
    """The plan job failed; its status.json and log.txt say why."""


class PlanJobRunner:
    """The callable each Slurm task runs (Checkpointable for submitit: see the module docstring)."""

    def __init__(self, plan_path: str, job_id: str, run_dir: str, stop_grace_s: float = STOP_GRACE_S):
        self.plan_path, self.job_id, self.run_dir, self.stop_grace_s = plan_path, job_id, run_dir, stop_grace_s
        self._stop: threading.Event | None = None
        self._worker: threading.Thread | None = None

    def __call__(self) -> int:
        from runtime.main import EXIT_FAILED, run_job

        if self._already_done():  # requeued after it finished (a late signal, a node failure)
            return 0
        self._stop = threading.Event()
        result: dict[str, int] = {}
        self._worker = threading.Thread(name=f"vpo-{self.job_id}", target=lambda: result.update(
            code=run_job(Path(self.plan_path), self.job_id, Path(self.run_dir), handle_signals=False,
                         stop_event=self._stop)))
        self._worker.start()
        while self._worker.is_alive():
            self._worker.join(timeout=1.0)  # short waits: the main thread must take Slurm's signals
        code = result.get("code", EXIT_FAILED)
        if code != 0:
            raise JobFailed(f"plan job {self.job_id} exited with code {code}; see its status.json and log.txt")
        return code

    def _already_done(self) -> bool:
        from vpolang.plan import load_plan

        plan = load_plan(self.plan_path)
        return RunDir(Path(self.run_dir)).is_done(plan.job(self.job_id))

    def checkpoint(self, *args: Any, **kwargs: Any):
        import submitit

        if self._worker is not None and self._worker.is_alive():
            self._stop.set()
            self._worker.join(timeout=self.stop_grace_s)
        return submitit.helpers.DelayedSubmission(
            PlanJobRunner(self.plan_path, self.job_id, self.run_dir, self.stop_grace_s))

    def __getstate__(self) -> dict[str, Any]:  # submitted before it runs: no thread to pickle
        return {k: v for k, v in self.__dict__.items() if k not in ("_stop", "_worker")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _stop=None, _worker=None)


def slurm_parameters(job: Job, dependencies: list[str], time_min: int) -> dict[str, Any]:
    """submitit SlurmExecutor parameters for a job: one task per GPU, resources from its placement.
    Every string is checked again here (UnsafeText): the plan may not have come from the compiler."""
    p = job.placement
    check_job_strings(job)
    params: dict[str, Any] = {"job_name": f"vpo-{job.id}", "nodes": p.nodes,
                              "ntasks_per_node": max(p.gpus_per_node, 1), "time": time_min,
                              "signal_delay_s": SIGNAL_DELAY_S, "srun_args": ["--kill-on-bad-exit=1"]}
    # VPO_DEVICE=cpu rehearses a multi-GPU placement on CPUs: the tasks, not the GPUs, are asked for
    rehearsal = os.environ.get("VPO_DEVICE") == "cpu"
    optional = {"gpus_per_node": None if rehearsal else p.gpus_per_node or None, "cpus_per_task": p.cpus_per_task,
                "mem": f"{math.ceil(p.mem_gib)}G" if p.mem_gib else None, "partition": p.partition,
                "account": p.account, "dependency": "afterok:" + ":".join(dependencies) if dependencies else None}
    params.update({k: v for k, v in optional.items() if v is not None})
    # A job whose dependency failed can never start: have Slurm drop it rather than keep it queued.
    params["additional_parameters"] = {"kill-on-invalid-dep": "yes", **p.slurm_extra}
    return params


def check_job_strings(job: Job) -> None:
    """The second line of defence: submitit writes these strings into `#SBATCH` lines, where quoting
    does not help (a newline ends the directive and starts a shell line), so they must match the
    compiler's grammars."""
    problem = identifier_problem(job.id, "job id", DOTTED)
    if problem:
        raise UnsafeText(f"refusing to submit: {problem}")
    check_placement(job.placement, job.id)


def check_folder(folder: Path) -> None:
    """The submitit folder reaches `#SBATCH --output=...`: no control characters in its path."""
    problem = path_text_problem(str(Path(folder).resolve()))
    if problem:
        raise UnsafeText(f"refusing to submit from run directory {folder}: {problem}")


def time_limit_min(job: Job) -> int:
    if job.placement.time_limit_s:
        return max(1, math.ceil(job.placement.time_limit_s / 60))
    return partition_limit_min(job.placement.partition) or DEFAULT_TIME_MIN


def partition_limit_min(partition: str | None) -> int | None:
    """The partition's time limit in minutes (the default partition's when None); None if unlimited."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P %l"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        name, _, limit = line.partition(" ")
        if (partition is None and name.endswith("*")) or name.rstrip("*") == partition:
            return parse_slurm_minutes(limit.strip())
    return None


def parse_slurm_minutes(text: str) -> int | None:
    """Slurm's [days-]hours:minutes:seconds (or minutes[:seconds]) in whole minutes; None if infinite."""
    if text in ("infinite", "UNLIMITED", "") or "n/a" in text.lower():
        return None
    days, _, clock = text.rpartition("-")
    parts = [int(x) for x in clock.split(":")]
    if len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2 and days:
        (hours, minutes), seconds = parts, 0
    else:
        hours, (minutes, seconds) = 0, (parts + [0])[:2]
    return max(1, (int(days or 0) * 24 + hours) * 60 + minutes + math.ceil(seconds / 60))


class SlurmExecutor:
    def __init__(self, poll_s: float = POLL_S):
        self.poll_s = poll_s

    def run(self, plan: Plan, jobs: list[Job], run: RunDir, progress: Progress) -> int:
        import submitit

        folder = run.root / "submitit" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        try:  # all of them before the first submission: a refused job must not leave half a run queued
            check_folder(folder)
            for job in jobs:
                check_job_strings(job)
        except UnsafeText as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        folder.mkdir(parents=True)
        snapshot = folder / "plan.json"
        write_bytes(snapshot, run.plan_path.read_bytes())
        executor = submitit.SlurmExecutor(folder=folder)
        handles: dict[str, Any] = {}
        for job in jobs:
            if run.is_done(job):
                run.mark_current(job)
                progress.cached(job)
                continue
            handles[job.id] = _still_queued(run.job(job)) or self._submit(executor, snapshot, job, run, handles)
            progress.note(job, f"Slurm job {handles[job.id].job_id}")
        return _Watch(plan, run, progress, handles).until_done(self.poll_s)

    @staticmethod
    def _submit(executor, snapshot: Path, job: Job, run: RunDir, handles: dict[str, Any]):
        deps = [handles[d].job_id for d in job.depends_on if d in handles]
        executor.update_parameters(**slurm_parameters(job, deps, time_limit_min(job)))
        handle = executor.submit(PlanJobRunner(str(snapshot), job.id, str(run.root.resolve())))
        folder = run.job(job)
        folder.root.mkdir(parents=True, exist_ok=True)
        write_text(folder.slurm_path, json.dumps({"job_id": handle.job_id, "folder": str(executor.folder),
                                                 "tasks": handle.num_tasks, "submitted": time.time()}) + "\n")
        return handle


def _still_queued(folder: JobDir):
    """The submitit handle of a Slurm job an earlier `vpo run` submitted for this folder, if Slurm
    still has it queued or running."""
    import submitit

    try:
        record = json.loads(folder.slurm_path.read_text())
        if not re.fullmatch(r"[0-9]+(_[0-9]+)?", str(record["job_id"])):  # it becomes a `--dependency`
            return None
        out = subprocess.run(["squeue", "-h", "-j", str(record["job_id"]), "-o", "%T"], capture_output=True,
                             text=True, timeout=30).stdout.split()
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return None
    if not out or out[0] not in LIVE_STATES:
        return None
    return submitit.SlurmJob(folder=record["folder"], job_id=str(record["job_id"]),
                             tasks=tuple(range(int(record.get("tasks", 1)))))


class _Watch:
    """Follows submitted jobs until each is done, failed or cancelled; Ctrl-C detaches (jobs go on)."""

    def __init__(self, plan: Plan, run: RunDir, progress: Progress, handles: dict[str, Any]):
        self.plan, self.run, self.progress, self.pending = plan, run, progress, dict(handles)
        self.failed: set[str] = set()
        self.seen_running: set[str] = set()

    def until_done(self, poll_s: float) -> int:
        try:
            while self.pending:
                for job_id in list(self.pending):
                    self._check(self.plan.job(job_id))
                if self.pending:
                    time.sleep(poll_s)
        except KeyboardInterrupt:
            ids = " ".join(h.job_id for h in self.pending.values())
            print(f"detached: the Slurm jobs keep running ({ids}); follow them with `vpo status {self.run.root}`, "
                  f"stop them with `scancel {ids}`", flush=True)
            return 130
        return 1 if self.failed else 0

    def _check(self, job: Job) -> None:
        handle, folder = self.pending[job.id], self.run.job(job)
        if self.run.is_done(job):
            self.progress.finished(job, folder)
            del self.pending[job.id]
            return
        state = handle.get_info(mode="force").get("State", "UNKNOWN").split()[0]
        if state in FAILED_STATES or state == "COMPLETED":
            log = handle.paths.stderr
            message = record_lost(self.run, job, f"Slurm job {handle.job_id} ended {state}; see {log}")
            self._ended(job, lambda: self.progress.failed(job, message, folder))
        elif state.startswith("CANCELLED"):
            upstream = failed_upstream(job, self.failed)
            reason = (f"not run: it needs {', '.join(upstream)}, which did not finish" if upstream
                      else f"Slurm job {handle.job_id} was cancelled")
            record_not_run(self.run, job, reason)
            self._ended(job, lambda: self.progress.note(job, reason))
        elif folder.read_status().get("state") == "running":
            if job.id not in self.seen_running:
                self.seen_running.add(job.id)
                self.progress.started(job, f"Slurm job {handle.job_id}")
            self.progress.tick(job, folder)

    def _ended(self, job: Job, report) -> None:
        self.failed.add(job.id)
        del self.pending[job.id]
        report()
