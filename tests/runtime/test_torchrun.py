"""A job placed on two GPUs runs as two processes under torch.distributed.run (here rehearsed on the CPU
with gloo) and learns what one process learns from the same global batch."""
from __future__ import annotations

import torch

from runtime import registry
from runtime.executors.local import job_command, processes_for
from runtime.main import run_job
from runtime.rundir import RunDir
from vpolang.plan import save_plan

from . import toy
from .conftest import run_toy, toy_job, toy_plan, weights


def test_two_ranks_match_one_process_on_the_same_global_batch(tmp_path, monkeypatch):
    two = toy_plan(tmp_path / "toy.vpo", [toy_job("a", gpus=2, steps=6, batch=16)])
    out = run_toy(two, tmp_path / "two", VPO_DEVICE="cpu")
    assert out.returncode == 0, out.stderr
    assert "a: running (sft, 2 processes)" in out.stderr
    folder = RunDir(tmp_path / "two").job(two.job("a"))
    log = folder.log_path.read_text()
    assert "rank 0 of 2, device cpu" in log and "rank 1 of 2, device cpu" in log

    one = toy_plan(tmp_path / "toy.vpo", [toy_job("a", gpus=0, steps=6, batch=16)])
    save_plan(one, tmp_path / "one.json")
    monkeypatch.setitem(registry.TRAINERS, "sft", toy.run)
    assert run_job(tmp_path / "one.json", "a", tmp_path / "one", handle_signals=False) == 0
    expected = weights(RunDir(tmp_path / "one").job(one.job("a")).root)
    for name, value in weights(folder.root).items():
        torch.testing.assert_close(value, expected[name])  # equal up to the order of the gradient sum


def test_local_placement_decides_the_process_count(tmp_path, monkeypatch):
    monkeypatch.delenv("VPO_DEVICE", raising=False)
    plan = toy_plan(tmp_path / "toy.vpo", [toy_job("a", gpus=0), toy_job("b", gpus=1), toy_job("c", gpus=4)])
    assert processes_for(plan.job("a")) == processes_for(plan.job("b")) == 1
    run = RunDir(tmp_path / "run")
    assert job_command(run, plan.job("a"), 1)[1:3] == ["-m", "runtime.main"]
    assert job_command(run, plan.job("c"), 4)[1:5] == ["-m", "torch.distributed.run", "--standalone",
                                                        "--nproc_per_node=4"]
    if torch.cuda.device_count() < 4:
        import pytest
        from runtime.errors import JobError

        with pytest.raises(JobError, match="asks for 4 GPUs and this machine has"):
            processes_for(plan.job("c"))
    monkeypatch.setenv("VPO_DEVICE", "cpu")
    assert processes_for(plan.job("c")) == 4
