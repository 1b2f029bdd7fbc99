"""Run one plan job: `python -m runtime.main --plan P --job ID --run-dir D`.

Loads the plan (refusing a schema it cannot read), joins the job's process group when it runs as several
processes, seeds, calls the trainer for the job's kind and records the outcome in status.json. A failure
the user can act on (JobError: missing data, NaN loss) is printed as one line naming the recipe line; an
unexpected one keeps its traceback in the job's log.txt. Either way the job is recorded as failed.

The process holds a lock on the job's folder while it runs (released by the kernel when it dies): a
second trainer on the same folder refuses to start (exit 73) and leaves the folder to the first. A
run directory that cannot be written (full, read-only) fails the job with one line naming the path.

Exit codes: 0 done, 1 failed, 2 unusable arguments, 73 folder busy, 75 stopped early and resumable
(preempted or terminated: state pending), 130 interrupted by the user (state cancelled; a later run
resumes it)."""
from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

from vpolang.atomic import write_failure
from vpolang.plan import Job, Plan, PlanVersionError, load_plan

from .context import JobContext, device_for
from .distributed import DistInfo, barrier, from_environment, process_group
from .errors import JobError, StopRequested
from .registry import supports_distributed, trainer_for
from .rundir import JobBusy, JobDir, RunDir

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED, EXIT_CANCELLED = 0, 1, 2, 75, 130
EXIT_BUSY = 73  # another live trainer holds the job folder (EX_CANTCREAT): nothing was done


def run_job(plan_path: Path, job_id: str, run_dir: Path, handle_signals: bool = True,
            stop_event: threading.Event | None = None) -> int:
    """Runs the job and returns its exit code. `stop_event` lets a caller in another thread ask the job
    to checkpoint and stop (the Slurm executor does, on preemption)."""
    try:
        plan = load_plan(plan_path)
        job = plan.job(job_id)
    except KeyError:
        return _usage_error(f"plan {plan_path} has no job {job_id!r}")
    except (PlanVersionError, OSError, ValueError) as exc:
        return _usage_error(f"cannot run plan {plan_path}: {exc}")
    run, dist = RunDir(Path(run_dir)), from_environment()
    try:
        folder = run.job(job)
    except ValueError as exc:  # PathEscape: the job folder is a link out of the run directory
        return _usage_error(f"cannot run job {job_id!r} in {run_dir}: {exc}")
    try:
        with folder.hold() if dist.rank == 0 else contextlib.nullcontext():
            return _attempt(plan, job_id, run, dist, handle_signals, stop_event or threading.Event())
    except JobBusy as exc:  # the live trainer owns the folder and its status: touch neither
        print(f"error: job `{job_id}`: {exc}; it is not started twice", file=sys.stderr)
        return EXIT_BUSY
    except OSError as exc:
        message = write_failure(exc)
        if message is None:
            raise
        return _cannot_write(folder, job, message)


def _attempt(plan: Plan, job_id: str, run: RunDir, dist: DistInfo, handle_signals: bool,
             stop_event: threading.Event) -> int:
    """One attempt at the job, by the process that holds the job folder's lock."""
    ctx = _context(plan, job_id, run, dist, stop_event)
    if handle_signals:
        ctx.install_signal_handlers()
    _record_start(ctx)
    try:
        try:
            _train(ctx)
        finally:
            ctx.close_trackers()
    except StopRequested as exc:  # Ctrl-C or preemption while generating data: nothing to checkpoint yet
        ctx.log(str(exc))
        return _record_stop(ctx, ctx.stop_reason or "preempted")
    except JobError as exc:
        return _fail(ctx, _at_stage(ctx, str(exc)), None)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, with the recipe line
        unwritable = write_failure(exc)  # a full or read-only disk: one line naming the path
        if unwritable:
            return _fail(ctx, f"{ctx.where}: {unwritable}", None)
        return _fail(ctx, f"{ctx.where}: {type(exc).__name__}: {exc}", traceback.format_exc())
    except BaseException:  # SystemExit from submitit's requeue, or KeyboardInterrupt: resumable
        _record_stop(ctx, ctx.stop_reason or "preempted")
        raise
    return _finish(ctx)


def _at_stage(ctx: JobContext, message: str) -> str:
    """Every failure names the stage's recipe line, added here and only here (trainers, loaders and the
    job context raise JobError without a location); a data error's own file:line follows it."""
    return f"{ctx.where}: {message}"


def _context(plan: Plan, job_id: str, run: RunDir, dist: DistInfo, stop_event: threading.Event) -> JobContext:
    job = plan.job(job_id)
    ctx = JobContext(plan, job, run, run.job(job), dist=dist, device=device_for(dist.local_rank),
                     stop_event=stop_event)
    ctx.dir.root.mkdir(parents=True, exist_ok=True)
    return ctx


def _train(ctx: JobContext) -> None:
    trainer = trainer_for(ctx.job.kind)
    if ctx.world_size > 1 and not supports_distributed(trainer):
        raise JobError(f"the `{ctx.job.kind}` trainer runs in one process, but this job was "
                       f"started as {ctx.world_size}; place it on one GPU (nodes = 1, gpus_per_node = 1)")
    ctx.check_execution()
    with process_group(ctx.dist, ctx.device):
        ctx.seed_everything()
        trainer(ctx)
        barrier(ctx.dist)  # the main rank has written the outputs before any rank reports


def _record_start(ctx: JobContext) -> None:
    ctx.log(f"attempt on {socket.gethostname()}: {ctx.job.kind} job `{ctx.job.id}` ({ctx.job.hash[:16]}), "
            f"rank {ctx.rank} of {ctx.world_size}, device {ctx.device}")
    if ctx.is_main:
        attempts = ctx.dir.read_status()["attempts"] + 1  # validated: a damaged status reads as 0
        ctx.dir.write_status(state="running", job=ctx.job.id, kind=ctx.job.kind, hash=ctx.job.hash,
                             attempts=attempts, started=time.time(), finished=None, error=None, stop_reason=None,
                             span=str(ctx.job.span) if ctx.job.span else None, host=socket.gethostname(),
                             pid=os.getpid(), warnings=[])
        ctx.dir.activity_path.unlink(missing_ok=True)  # the previous attempt's, no longer true


def _finish(ctx: JobContext) -> int:
    if not ctx.is_main:  # the main rank checks the outputs and records the outcome
        return EXIT_STOPPED if ctx.stop_requested else EXIT_OK
    missing = [name for name, path in ctx.output_paths.items() if not path.exists()]
    if not missing:
        ctx.dir.write_status(state="done", finished=time.time())
        ctx.run.mark_current(ctx.job)
        ctx.log("done")
        return EXIT_OK
    if ctx.stop_requested:
        return _record_stop(ctx, ctx.stop_reason or "preempted")  # set by the launcher (Slurm)
    return _fail(ctx, f"{ctx.where}: the `{ctx.job.kind}` trainer returned without writing "
                      f"{', '.join(missing)}", None)


def _record_stop(ctx: JobContext, reason: str) -> int:
    """Stopped before the end: by the user (cancelled) or by the cluster (pending, to be resumed)."""
    cancelled = reason == "interrupted"
    if ctx.is_main:
        ctx.dir.write_status(state="cancelled" if cancelled else "pending", stop_reason=reason, finished=time.time())
    ctx.log(f"stopped ({reason}); the next attempt resumes from the latest checkpoint")
    return EXIT_CANCELLED if cancelled else EXIT_STOPPED


def _fail(ctx: JobContext, message: str, trace: str | None) -> int:
    print(f"error: {message}", file=sys.stderr)
    try:
        if trace:
            ctx.log(trace.rstrip())
        ctx.log(f"failed: {message}")
        ctx.dir.write_status(state="failed", error=message, finished=time.time())
    except OSError as exc:  # the disk that failed the job may not take its record either
        if write_failure(exc) is None:
            raise
        print(f"  (not recorded in {ctx.dir.status_path}: {write_failure(exc)})", file=sys.stderr)
        return EXIT_FAILED
    if trace:
        print(f"  (traceback in {ctx.dir.log_path})", file=sys.stderr)
    return EXIT_FAILED


def _cannot_write(folder: JobDir, job: Job, message: str) -> int:
    """The job could not even start or finish recording (run directory read-only or full): one line,
    and the failure recorded if the status can still be written."""
    where = f"stage `{job.stage}`" + (f" ({job.span})" if job.span else "")
    print(f"error: {where}: {message}", file=sys.stderr)
    try:
        folder.write_status(state="failed", job=job.id, kind=job.kind, hash=job.hash, error=f"{where}: {message}",
                            finished=time.time())
    except OSError:
        pass
    return EXIT_FAILED


def _usage_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.main", description="Run one job of a vpo plan.")
    parser.add_argument("--plan", required=True, type=Path, help="the plan JSON (a run directory's plan.json)")
    parser.add_argument("--job", required=True, help="the job id")
    parser.add_argument("--run-dir", required=True, type=Path, help="the run directory")
    args = parser.parse_args(argv)
    return run_job(args.plan, args.job, args.run_dir)


if __name__ == "__main__":
    sys.exit(main())
