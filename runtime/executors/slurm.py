"""Run jobs on Slurm through submitit: one Slurm job per plan job, `afterok` dependencies, resources from
the placement, and requeue on preemption or timeout (the job resumes from its latest checkpoint)."""
from __future__ import annotations

import time
from pathlib import Path

from vpolang.plan import Job, Plan

from ..progress import Progress
from ..rundir import RunDir

TERMINAL_BAD = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"}


class PlanJobRunner:
    """The callable each Slurm task runs. Checkpointable: on preemption or an approaching time limit
    submitit calls `checkpoint`, which resubmits the same call; the trainer then resumes from its
    latest valid checkpoint, so at most the work since that checkpoint is lost."""

    def __init__(self, plan_path: str, job_id: str, run_dir: str):
        self.plan_path, self.job_id, self.run_dir = plan_path, job_id, run_dir

    def __call__(self) -> int:
        from runtime.main import run_job

        code = run_job(Path(self.plan_path), self.job_id, Path(self.run_dir), handle_signals=False)
        if code != 0:
            raise RuntimeError(f"job {self.job_id} exited with {code}; see its log.txt")
        return code

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(PlanJobRunner(self.plan_path, self.job_id, self.run_dir))


def slurm_parameters(job: Job, dependencies: list[str]) -> dict:
    p = job.placement
    gpus = p.gpus_per_node
    params = {"nodes": p.nodes, "tasks_per_node": max(gpus, 1), "cpus_per_task": p.cpus_per_task or 1,
              "timeout_min": max(1, (p.time_limit_s or 24 * 3600) // 60), "name": f"vpo-{job.id}",
              "slurm_signal_delay_s": 120}
    if gpus:
        params["gpus_per_node"] = gpus
    if p.mem_gib:
        params["mem_gb"] = int(p.mem_gib)
    if p.partition:
        params["slurm_partition"] = p.partition
    extra = dict(p.slurm_extra)
    if p.account:
        extra["account"] = p.account
    if dependencies:
        extra["dependency"] = "afterok:" + ":".join(dependencies)
        extra["kill-on-invalid-dep"] = "yes"
    if extra:
        params["slurm_additional_parameters"] = extra
    return params


def run_slurm(plan: Plan, jobs: list[Job], run: RunDir, progress: Progress, force: bool = False,
              poll_s: float = 2.0) -> int:
    import submitit

    folder = run.root / "submitit" / time.strftime("%Y%m%d-%H%M%S")
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    submitted: dict[str, object] = {}
    for job in jobs:
        if run.is_done(job) and not force:
            progress.event(job, "cached", "")
            continue
        missing = [d for d in job.depends_on if d not in submitted and not run.is_done(plan.job(d))]
        if missing:
            progress.event(job, "skipped", f"waits on {', '.join(missing)}")
            continue
        deps = [submitted[d].job_id for d in job.depends_on if d in submitted]
        executor.update_parameters(**slurm_parameters(job, deps))
        run.job(job).root.mkdir(parents=True, exist_ok=True)
        submitted[job.id] = executor.submit(PlanJobRunner(str(run.plan_path), job.id, str(run.root)))
        progress.event(job, "submitted", f"slurm job {submitted[job.id].job_id}")
    return _wait(plan, submitted, run, progress, poll_s)


def _wait(plan: Plan, submitted: dict, run: RunDir, progress: Progress, poll_s: float) -> int:
    pending = dict(submitted)
    failed = False
    while pending:
        for job_id, sj in list(pending.items()):
            job = plan.job(job_id)
            state = sj.state
            if run.is_done(job) and sj.done():
                progress.finish(job, run.job(job))
                run.mark_current(job)
                del pending[job_id]
            elif state in TERMINAL_BAD or (sj.done() and not run.is_done(job)):
                error = run.job(job).read_status().get("error") or f"slurm state {state}"
                progress.fail(job, error, run.job(job))
                failed = True
                del pending[job_id]
            else:
                progress.tick(job, run.job(job))
        if pending:
            time.sleep(poll_s)
    return 1 if failed else 0
