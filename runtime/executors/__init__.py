"""Executors run a plan's selected jobs in dependency order, each job as `runtime.main` in its own
process(es): `local` (subprocesses on this machine) and `slurm` (one Slurm job per plan job, through
submitit). They share one small protocol, and find trainers only through `runtime.registry` (by way of
`runtime.main`)."""
from __future__ import annotations

from typing import Protocol

from vpolang.plan import Job, Plan

from ..progress import Progress
from ..rundir import RunDir

EXECUTORS = ("local", "slurm")


class Executor(Protocol):
    def run(self, plan: Plan, jobs: list[Job], run: RunDir, progress: Progress) -> int:
        """Runs `jobs` (already in dependency order; a job outside them that they need is done) and
        returns an exit code: 0 all done, 1 a job failed, 130 interrupted. Jobs already done for their
        hash are skipped; the executor writes nothing but progress and, for jobs that could not record
        it themselves (killed, never started), their status."""
        ...


def executor_for(name: str) -> Executor:
    if name == "local":
        from .local import LocalExecutor
        return LocalExecutor()
    if name == "slurm":
        from .slurm import SlurmExecutor
        return SlurmExecutor()
    raise ValueError(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}")
