"""What the CLI calls: run a plan, show a run's status. Light at import (no torch)."""
from __future__ import annotations

from pathlib import Path

from vpolang.plan import Plan, load_plan, save_plan, select_jobs

from .progress import Progress
from .rundir import RunDir, default_run_dir


def run_plan(plan: Plan, run_dir: Path | None = None, only: str | None = None, executor: str | None = None,
             progress: str = "auto", force: bool = False) -> int:
    root = Path(run_dir) if run_dir else default_run_dir(plan)
    run = RunDir(root)
    root.mkdir(parents=True, exist_ok=True)
    save_plan(plan, run.plan_path)  # the lock file: exactly what ran
    try:
        jobs = select_jobs(plan, only)
    except KeyError as exc:
        print(f"error: {exc.args[0]}")
        return 2
    view = Progress(progress, total=len(jobs))
    kind = executor or ("slurm" if any(j.placement.executor == "slurm" for j in jobs) else "local")
    if kind == "slurm":
        from .executors.slurm import run_slurm
        code = run_slurm(plan, jobs, run, view, force)
    else:
        from .executors.local import run_local
        code = run_local(plan, jobs, run, view, force)
    if code == 0 and view.mode != "quiet":
        print(f"run directory: {root}")
    return code


def show_status(run_dir: Path) -> int:
    from rich.console import Console
    from rich.table import Table

    run = RunDir(Path(run_dir))
    if not run.plan_path.exists():
        print(f"error: {run_dir} is not a run directory (no plan.json)")
        return 1
    plan = load_plan(run.plan_path)
    table = Table(title=f"run: {run_dir}", title_justify="left")
    for col in ("job", "kind", "state", "attempts", "time", "last metrics"):
        table.add_column(col)
    for job in plan.jobs:
        jd = run.job(job)
        st = jd.read_status()
        took = st.get("finished", 0) - st.get("started", 0) if st.get("finished") and st.get("started") else None
        m = jd.last_metrics() or {}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in m.items() if k != "time" and isinstance(v, (int, float)))
        table.add_row(job.id, job.kind, st.get("state", "pending") + (f": {st['error']}" if st.get("error") else ""),
                      str(st.get("attempts", 0)), f"{took:.0f}s" if took is not None else "-", shown[:60])
    Console().print(table)
    return 0
