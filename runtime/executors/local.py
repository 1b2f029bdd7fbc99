"""Run jobs on this machine, one after another in dependency order, each in its own process group.

A job that asks for more than one GPU runs as one process per GPU under torch.distributed.run. Ctrl-C
(or SIGTERM) is forwarded to the running job as SIGINT: it checkpoints and stops, is recorded as
cancelled, and the next `vpo run` resumes it; a second Ctrl-C, or a job that takes longer than
STOP_GRACE_S to stop, is killed. The job also stops when `vpo run` dies without a word (kill -9, the
terminal closed): the kernel sends it SIGTERM (a parent-death signal), so no orphan trains on."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from vpolang.plan import Job, Plan

from ..errors import JobError
from ..progress import Progress
from ..rundir import JobDir, RunDir
from .common import failed_upstream, record_lost, record_not_run

POLL_S = 0.5
STOP_GRACE_S = 120.0
EXIT_BUSY, EXIT_STOPPED, EXIT_CANCELLED = 73, 75, 130
PR_SET_PDEATHSIG = 1  # linux/prctl.h
RUNTIME_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the `runtime` package


class Interrupted(Exception):
    """Ctrl-C or SIGTERM reached the executor."""


class LocalExecutor:
    def __init__(self, stop_grace_s: float = STOP_GRACE_S):
        self.stop_grace_s = stop_grace_s

    def run(self, plan: Plan, jobs: list[Job], run: RunDir, progress: Progress) -> int:
        failed: set[str] = set()
        with _interrupts_raised():
            try:
                for job in jobs:
                    code = self._run_or_skip(job, run, progress, failed)
                    if code in (EXIT_STOPPED, EXIT_CANCELLED):
                        return code
            except Interrupted:  # between jobs: nothing is running
                return EXIT_CANCELLED
        return 1 if failed else 0

    def _run_or_skip(self, job: Job, run: RunDir, progress: Progress, failed: set[str]) -> int:
        upstream = failed_upstream(job, failed)
        if upstream:
            reason = f"not run: it needs {', '.join(upstream)}, which did not finish"
            record_not_run(run, job, reason)
            progress.note(job, reason)
            failed.add(job.id)
            return 1
        if run.is_done(job):
            run.mark_current(job)
            progress.cached(job)
            return 0
        try:
            command = job_command(run, job, processes_for(job))
        except JobError as exc:
            code, message = 1, record_lost(run, job, str(exc))
        else:
            code, message = self._supervise(command, job, run, progress)
        if code == 0:
            progress.finished(job, run.job(job))
        elif code in (EXIT_STOPPED, EXIT_CANCELLED):
            progress.note(job, "stopped; `vpo run` again resumes it from its latest checkpoint")
        else:
            failed.add(job.id)
            progress.failed(job, message, run.job(job))
        return code

    def _supervise(self, command: list[str], job: Job, run: RunDir, progress: Progress) -> tuple[int, str]:
        folder = run.job(job)
        folder.root.mkdir(parents=True, exist_ok=True)
        progress.started(job, f"{_processes_text(command)}")
        with folder.log_path.open("ab") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_child_env(),
                                    start_new_session=True,  # a terminal's Ctrl-C reaches us only
                                    preexec_fn=stop_with_parent())
            try:
                while proc.poll() is None:
                    progress.tick(job, folder)
                    time.sleep(POLL_S)
            except Interrupted:
                progress.note(job, "interrupted: checkpointing, then stopping (Ctrl-C again to kill it)")
                self._stop(proc)
                return EXIT_CANCELLED, _record_interrupted(folder)
            finally:  # `vpo run` stopping for any other reason (an error here) stops its job too
                if proc.poll() is None:
                    self._stop(proc)
        progress.tick(job, folder)
        return proc.returncode, _outcome(proc.returncode, job, run, folder)

    def _stop(self, proc: subprocess.Popen) -> None:
        _signal_group(proc, signal.SIGINT)
        try:
            proc.wait(timeout=self.stop_grace_s)
        except (Interrupted, subprocess.TimeoutExpired):
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def processes_for(job: Job) -> int:
    """One process per GPU the placement asks for (on the CPU when VPO_DEVICE=cpu: a rehearsal)."""
    p = job.placement
    if p.nodes > 1:
        raise JobError(f"it asks for {p.nodes} nodes; the local executor runs on this machine only "
                       "(use --executor slurm)")
    wanted = max(p.gpus_per_node, 1)
    if wanted == 1 or os.environ.get("VPO_DEVICE") == "cpu":
        return wanted
    import torch

    have = torch.cuda.device_count()
    if have < wanted:
        raise JobError(f"it asks for {wanted} GPUs and this machine has {have} "
                       "(set VPO_DEVICE=cpu to rehearse its processes on the CPU)")
    return wanted


def job_command(run: RunDir, job: Job, processes: int) -> list[str]:
    args = ["--plan", str(run.plan_path.resolve()), "--job", job.id, "--run-dir", str(run.root.resolve())]
    if processes == 1:
        return [sys.executable, "-m", "runtime.main", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "runtime.main", *args]


def _processes_text(command: list[str]) -> str:
    nproc = [c for c in command if c.startswith("--nproc_per_node=")]
    return f"{nproc[0].split('=')[1]} processes" if nproc else "1 process"


def _outcome(code: int, job: Job, run: RunDir, folder: JobDir) -> str:
    if code == 0 and run.is_done(job):
        return ""
    if code in (EXIT_STOPPED, EXIT_CANCELLED):
        return folder.read_status().get("stop_reason") or "stopped"
    if code == EXIT_BUSY:  # a trainer started outside this run owns the folder: its status is its own
        return f"another trainer is running in {folder.root} ({folder.holder() or 'it has just ended'})"
    if code < 0:
        why = "killed by " + signal.Signals(-code).name + (" (out of memory?)" if -code == signal.SIGKILL else "")
    else:
        why = f"exited with code {code}"
    return record_lost(run, job, f"the job process {why}; see {folder.log_path}")


def _record_interrupted(folder: JobDir) -> str:
    """The job records its own stop; one killed before it could is still cancelled, not running."""
    if folder.read_status().get("state") == "running":
        folder.write_status(state="cancelled", stop_reason="killed after Ctrl-C", finished=time.time())
    return "interrupted"


def stop_with_parent():
    """A preexec_fn asking the kernel to send the job SIGTERM when `vpo run` dies, however it dies
    (kill -9 included): the job checkpoints and stops, as on Ctrl-C, instead of training on as an orphan
    beside the next `vpo run`. Linux only (elsewhere None: the job then outlives a killed `vpo run`, and
    its folder lock makes the next `vpo run` refuse while it lives)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The job process must import this same runtime, wherever the caller found it.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(RUNTIME_ROOT), env.get("PYTHONPATH", "")]))
    return env


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # the job and, under torchrun, every rank
    except ProcessLookupError:
        pass


class _interrupts_raised:
    """While jobs run, SIGINT and SIGTERM raise Interrupted in the executor (main thread only)."""

    def __enter__(self):
        self.saved = {}
        if _in_main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed
                self.saved[sig] = signal.signal(sig, _raise_interrupted)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def _raise_interrupted(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
