"""What the Slurm executor asks Slurm for, read from the sbatch script submitit writes (no Slurm needed),
and the Checkpointable runner's requeue hand-off."""
from __future__ import annotations

import pickle
import threading

import pytest

from runtime.executors import slurm
from vpolang.plan import Placement

from .conftest import toy_job


def sbatch_text(job, deps=(), time_min=90):
    from submitit.slurm.slurm import _make_sbatch_string

    return _make_sbatch_string(command="python -m x", folder="/tmp/f", **slurm.slurm_parameters(job, list(deps), time_min))


def test_resources_come_from_the_placement():
    job = toy_job("rl", kind="grpo")
    job.placement = Placement(executor="slurm", partition="h100", account="proj", nodes=2, gpus_per_node=8,
                              cpus_per_task=12, mem_gib=640.5, slurm_extra={"qos": "high", "constraint": "ib"})
    text = sbatch_text(job, deps=["101", "102"], time_min=2880)
    for flag in ("--job-name=vpo-rl", "--nodes=2", "--ntasks-per-node=8", "--gpus-per-node=8", "--cpus-per-task=12",
                 "--mem=641G", "--partition=h100", "--account=proj", "--time=2880",
                 "--dependency=afterok:101:102", "--kill-on-invalid-dep=yes", "--qos=high", "--constraint=ib",
                 f"--signal=USR2@{slurm.SIGNAL_DELAY_S}"):
        assert f"#SBATCH {flag}\n" in text, flag
    assert "srun --unbuffered" in text and "--kill-on-bad-exit=1" in text


def test_a_cpu_job_asks_for_one_task_and_no_gpu():
    text = sbatch_text(toy_job("a", executor="slurm"))
    assert "#SBATCH --ntasks-per-node=1\n" in text and "gpus" not in text and "dependency" not in text


@pytest.mark.parametrize("text, minutes", [("30:00", 30), ("1-00:00:00", 1440), ("2:30:00", 150),
                                           ("45", 45), ("0:30", 1), ("infinite", None), ("UNLIMITED", None)])
def test_slurm_time_limits(text, minutes):
    assert slurm.parse_slurm_minutes(text) == minutes


def test_time_limit_prefers_the_recipe():
    job = toy_job("a", executor="slurm")
    job.placement.time_limit_s = 3601
    assert slurm.time_limit_min(job) == 61


def test_the_runner_pickles_without_its_thread_and_requeues_a_fresh_copy(tmp_path):
    runner = slurm.PlanJobRunner("/p/plan.json", "rl", "/p/run")
    runner._stop, runner._worker = threading.Event(), threading.Thread(target=lambda: None)
    copy = pickle.loads(pickle.dumps(runner))
    assert (copy.plan_path, copy.job_id, copy.run_dir, copy._worker) == ("/p/plan.json", "rl", "/p/run", None)
    requeued = runner.checkpoint()
    assert isinstance(requeued.function, slurm.PlanJobRunner) and requeued.function.job_id == "rl"
