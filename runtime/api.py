"""What the CLI calls: `vpo run` (run_plan) and `vpo status` (show_status). Light at import: no torch,
no submitit; executors and rich load when a run needs them."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from vpolang.atomic import write_failure
from vpolang.plan import (Job, Plan, PlanVersionError, job_hash, load_plan, save_plan, select_jobs,
                          topological_order)
from vpolang.status import one_line

from .progress import MODES, Progress
from .rundir import RunDir, RunDirBusy, default_run_dir

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run_plan(plan: Plan, run_dir: Path | str | None = None, only: str | None = None, executor: str | None = None,
             progress: str = "auto", force: bool = False, track: list[str] | None = None) -> int:
    """Runs the plan's jobs (those `only` selects, dbt-style: `rl`, `rl+`, `+rl`) in `run_dir` (default
    runs/<recipe>-<hash of its path>/) with the executor its placements name (or `executor`). Jobs done
    for their hash are skipped unless `force`, which sets their folders aside and starts them afresh.
    `track` adds experiment trackers (tensorboard, wandb) to every job's placement (not to its hash).
    Returns the exit code: 0 all done, 1 a job failed, 2 unusable request, 130 interrupted."""
    from .tracking import missing

    plan = with_verified_hashes(_with_absolute_recipe(plan))
    if track:
        problem = missing(track)
        if problem:
            return _error(f"--track: {problem}")
        plan = with_trackers(plan, track)
    chosen = sorted({t for job in plan.jobs for t in job.placement.track})
    problem = missing(chosen) if chosen else None
    if problem:
        return _error(problem)
    try:
        run = RunDir(Path(run_dir) if run_dir else default_run_dir(plan))
        for job in plan.jobs:  # every job folder inside the run directory, before anything is written
            run.job(job)
        jobs = select_jobs(plan, only)
        name = choose_executor(jobs, executor)
        if progress not in MODES:
            raise ValueError(f"--progress must be one of {', '.join(MODES)}, not {progress!r}")
    except (KeyError, ValueError) as exc:
        return _error(exc.args[0])
    missing = missing_upstream(plan, jobs, run)
    if missing:
        return _error(missing)
    try:
        with run.lock():
            busy = orphans(run, jobs) if name == "local" else None
            if busy:
                return _error(busy)
            return _execute(plan, jobs, run, name, progress, force)
    except RunDirBusy as exc:
        return _error(str(exc))
    except OSError as exc:  # the run directory is full or read-only: one line, not a traceback
        message = write_failure(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILED


def with_trackers(plan: Plan, track: list[str]) -> Plan:
    """The plan with `track` added to every job's trackers (the saved plan records them)."""
    jobs = [job.model_copy(update={"placement": job.placement.model_copy(
        update={"track": list(dict.fromkeys([*job.placement.track, *track]))})}) for job in plan.jobs]
    return plan.model_copy(update={"jobs": jobs})


def orphans(run: RunDir, jobs: list[Job]) -> str | None:
    """Jobs still trained by a live process this `vpo run` did not start (left by one that was killed
    where no parent-death signal reached them): starting them again would put two trainers on one
    folder, so the run is refused until they end."""
    running = run.running_jobs(jobs)
    if not running:
        return None
    who = "; ".join(f"{job.id} ({holder})" for job, holder in running)
    return (f"a trainer from an earlier `vpo run` is still running: {who}. Wait for it to end, or stop it "
            "(kill -TERM PID checkpoints and stops it), then run again; `vpo status` shows its progress")


def _execute(plan: Plan, jobs: list[Job], run: RunDir, executor: str, progress: str, force: bool) -> int:
    from .executors import executor_for

    save_plan(plan, run.plan_path)  # the lock file: exactly what this run runs
    if force:
        for job in jobs:
            run.retire(job)
    with Progress(progress, total=len(jobs)) as view:
        code = executor_for(executor).run(plan, jobs, run, view)
    if view.mode != "quiet":
        print(f"run directory: {run.root}  (a web page of it: vpo report {run.root})", file=sys.stderr)
    return code


def choose_executor(jobs: list[Job], requested: str | None) -> str:
    if requested is not None:
        if requested not in ("local", "slurm"):
            raise ValueError(f"--executor must be local or slurm, not {requested!r}")
        return requested
    placed = {job.placement.executor for job in jobs}
    if len(placed) > 1:
        raise ValueError("the selected jobs are placed both locally and on Slurm; choose one with "
                         "--executor, or run them in parts with --only")
    return placed.pop() if placed else "local"


def missing_upstream(plan: Plan, jobs: list[Job], run: RunDir) -> str | None:
    """With `--only`, a job outside the selection whose outputs a selected job needs must be done."""
    chosen = {job.id for job in jobs}
    needed = {dep for job in jobs for dep in job.depends_on if dep not in chosen}
    missing = sorted(dep for dep in needed if not run.is_done(plan.job(dep)))
    if not missing:
        return None
    users = sorted(job.id for job in jobs if set(job.depends_on) & set(missing))
    return (f"{', '.join(users)} need{'s' if len(users) == 1 else ''} the outputs of {', '.join(missing)}, "
            f"which {'is' if len(missing) == 1 else 'are'} not done for this configuration in {run.root}; "
            f"run {' and '.join(missing)} first, or select upstream too (--only +{users[0]})")


def _with_absolute_recipe(plan: Plan) -> Plan:
    """Jobs resolve data paths against the recipe's folder from any working directory (Slurm nodes)."""
    recipe = plan.recipe.model_copy(update={"path": str(Path(plan.recipe.path).resolve())})
    return plan.model_copy(update={"recipe": recipe})


def with_verified_hashes(plan: Plan) -> Plan:
    """Recomputes every job's content hash: a plan.json edited by hand must not pass a changed job off
    as the cached one."""
    plan = plan.model_copy(deep=True)
    hashes: dict[str, str] = {}
    for job in topological_order(plan.jobs):
        actual = job_hash(job, hashes)
        if job.hash and job.hash != actual:
            print(f"note: job {job.id} does not match the hash recorded in its plan (edited by hand?); "
                  "it is treated as a new configuration", file=sys.stderr)
        job.hash = hashes[job.id] = actual
    return plan


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def show_status(run_dir: Path | str, watch: bool = False, interval: float = 2.0,
                max_seconds: float | None = None) -> int:
    """Prints a table of every job of the run's plan: state, hash, attempts, duration, last metrics;
    the error of each failed job and the health alarms of each job's metrics. With `watch`, redraws
    it every `interval` seconds until the run ends (no `vpo run` holds the run directory, no trainer
    holds a job folder, no Slurm job is queued or running), or after `max_seconds`; Ctrl-C ends it
    cleanly. Reads the run directory alone, so it watches a run on Slurm from a login node. Returns 0,
    or 1 when `run_dir` is not a run directory."""
    from rich.console import Console

    run = RunDir(Path(run_dir))
    if not run.plan_path.exists():
        print(f"error: {run_dir} is not a run directory (it has no plan.json)", file=sys.stderr)
        return EXIT_FAILED
    try:
        plan = load_plan(run.plan_path)
    except (PlanVersionError, OSError, ValueError) as exc:
        print(f"error: {run.plan_path}: cannot read the plan: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    console = Console(width=None if sys.stdout.isatty() else 160)
    if not watch:
        console.print(_status_view(run, plan))
        return EXIT_OK
    from rich.live import Live

    deadline = time.monotonic() + max_seconds if max_seconds is not None else None

    def frames():
        while True:
            yield _status_view(run, plan)
            if not run_is_live(run, plan) or (deadline is not None and time.monotonic() >= deadline):
                return
            time.sleep(interval)

    try:
        if console.is_terminal:  # redrawn in place
            with Live(console=console, auto_refresh=False, transient=False) as live:
                for view in frames():
                    live.update(view, refresh=True)
        else:  # a log: each redraw printed in turn
            for view in frames():
                console.print(view)
                console.file.flush()
    except KeyboardInterrupt:  # Ctrl-C ends the watch, not the run
        console.print("stopped watching (the run goes on)", highlight=False)
    return EXIT_OK


def run_is_live(run: RunDir, plan: Plan) -> bool:
    """Something still works on the run: a `vpo run` holds it, a trainer holds a job folder, or a Slurm
    job of it is queued or running (recorded and not in a final state)."""
    from .rundir import holder

    if holder(run.root / ".lock") is not None:
        return True
    for job in plan.jobs:
        folder = run.job(job)
        if folder.holder() is not None:
            return True
        if folder.slurm_path.exists() and folder.read_status().get("state") in ("pending", "running"):
            return True
    return False


def _status_view(run: RunDir, plan: Plan):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"run {run.root}  ({plan.recipe.name})  {time.strftime('%H:%M:%S')}", title_justify="left")
    for column in ("job", "kind", "state", "hash", "attempts", "duration", "last metrics"):
        table.add_column(column, no_wrap=column in ("job", "hash"))
    notes = []
    for job in plan.jobs:
        row, error = _status_row(run, job)
        table.add_row(*row)
        if error:
            notes.append(f"{job.id}: {error}")
    return Group(table, *(Text(line) for line in notes))


def _status_row(run: RunDir, job: Job) -> tuple[list[str], str | None]:
    from .progress import summarize

    folder = run.job(job)
    status = folder.read_status()
    state = status.get("state", "pending")
    if folder.slurm_path.exists() and state in ("pending", "running"):
        state += f" (slurm {_slurm_id(folder.slurm_path)})"
    started, finished = status.get("started"), status.get("finished")
    duration = (finished or time.time()) - started if started else None
    metrics = folder.last_metrics() or {}
    shown = (f"step {metrics['step']}  " if "step" in metrics else "") + summarize(metrics)
    row = [job.id, job.kind, state, job.hash[:8], str(status["attempts"]),
           _duration(duration) if duration is not None else "-", shown]
    notes = [f"warning: {w}" for w in status["warnings"]]
    if state in ("failed", "cancelled") and status.get("error"):
        notes.append(status["error"])
    notes += [alarm.text() for alarm in job_alarms(folder, job)]
    return row, "\n  ".join(notes) or None


def job_alarms(folder, job: Job) -> list:
    """The health alarms (vpolang/health.py) of a job's metric stream so far."""
    from vpolang.health import alarms

    return alarms(folder.read_metrics(), job.config)


def _slurm_id(path: Path) -> str:
    import json

    try:
        return str(json.loads(path.read_text())["job_id"])
    except (OSError, ValueError, KeyError):
        return "?"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
