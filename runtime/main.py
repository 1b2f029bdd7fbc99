"""Run one plan job: `python -m runtime.main --plan P --job ID --run-dir D`.

Records the job's status; a user-facing failure (JobError: missing data, NaN loss, ...) is printed as one
message naming the recipe line, unexpected ones keep their traceback in the job's log.txt."""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

from vpolang.plan import PlanVersionError, load_plan

from .context import JobContext, device_for
from .errors import JobError
from .registry import trainer_for
from .rundir import RunDir

EXIT_FAILED, EXIT_STOPPED = 1, 75  # 75 (EX_TEMPFAIL): stopped for preemption, resumable


def run_job(plan_path: Path, job_id: str, run_dir: Path, handle_signals: bool = True) -> int:
    try:
        plan = load_plan(plan_path)
    except (PlanVersionError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    job = plan.job(job_id)
    run = RunDir(run_dir)
    rank, world, local = _distributed_env()
    if world > 1:
        # Trainers are single-process today; several ranks would each train alone and race on outputs.
        print(f"error: job {job_id} was launched as {world} processes; this runtime trains in one process "
              "per job (set nodes = 1 and a single GPU, or run with --executor local)", file=sys.stderr)
        return EXIT_FAILED
    ctx = JobContext(plan, job, run, run.job(job), rank, world, local, device_for(local))
    ctx.dir.root.mkdir(parents=True, exist_ok=True)
    if handle_signals:  # under submitit, its own handlers checkpoint and requeue the job
        ctx.install_signal_handlers()
    attempts = ctx.dir.read_status().get("attempts", 0) + 1
    if ctx.is_main:
        ctx.dir.write_status(state="running", hash=job.hash, job=job.id, kind=job.kind, attempts=attempts,
                             started=time.time(), error=None, span=str(job.span) if job.span else None)
    try:
        trainer_for(job.kind)(ctx)
    except JobError as exc:
        return _fail(ctx, str(exc), None)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded with the recipe line
        where = f" ({job.span})" if job.span else ""
        return _fail(ctx, f"stage `{job.stage}`{where}: {type(exc).__name__}: {exc}", traceback.format_exc())
    if ctx.stop_requested:
        if ctx.is_main:
            ctx.dir.write_status(state="pending", stopped=time.time())
        return EXIT_STOPPED
    if ctx.is_main:
        ctx.dir.write_status(state="done", finished=time.time())
        run.mark_current(job)
    return 0


def _fail(ctx: JobContext, message: str, trace: str | None) -> int:
    if trace:
        ctx.log(trace)
    ctx.log(f"failed: {message}")
    if ctx.is_main:
        ctx.dir.write_status(state="failed", error=message, finished=time.time())
    print(f"error: {message}", file=sys.stderr)
    if trace:
        print(f"  (traceback in {ctx.dir.log_path})", file=sys.stderr)
    return EXIT_FAILED


def _distributed_env() -> tuple[int, int, int]:
    """Rank, world size and local rank from torchrun or Slurm, else a single process."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))
    if "SLURM_PROCID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        return int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0))
    return 0, 1, 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.main")
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--job", required=True)
    parser.add_argument("--run-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    return run_job(args.plan, args.job, args.run_dir)


if __name__ == "__main__":
    sys.exit(main())
