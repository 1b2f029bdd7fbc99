"""Where a process sits in a job, from torchrun's or Slurm's environment."""
from __future__ import annotations

import pytest

from runtime.distributed import DistInfo, backend_for, first_host, from_environment, slurm_port


def test_torchrun_environment():
    info = from_environment({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "n1",
                             "MASTER_PORT": "1234", "SLURM_PROCID": "0", "SLURM_NTASKS": "2"})
    assert info == DistInfo(3, 8, 1, "n1", 1234, "torchrun")  # torchrun inside a Slurm allocation wins


def test_slurm_environment():
    info = from_environment({"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "5",
                             "SLURM_JOB_NODELIST": "gpu[017-018]", "SLURM_JOB_ID": "123456"})
    assert (info.rank, info.world_size, info.local_rank, info.master_addr) == (5, 16, 5, "gpu017")
    assert info.master_port == slurm_port("123456") and info.launcher == "slurm" and not info.is_main


def test_single_process_by_default_and_for_one_slurm_task():
    assert from_environment({}) == DistInfo()
    assert from_environment({"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_NODELIST": "a"}) == DistInfo()


@pytest.mark.parametrize("nodelist, host", [("node7", "node7"), ("gpu[07-09,12]", "gpu07"),
                                            ("gpu[3,5],cpu1", "gpu3"), ("a-b[10-11]", "a-b10"),
                                            ("h1,h2", "h1")])
def test_first_host_of_a_node_list(nodelist, host):
    assert first_host(nodelist) == host


def test_ports_differ_between_jobs_and_backends_follow_the_device():
    assert slurm_port("1001") != slurm_port("1002") and 20000 <= slurm_port("99999999") < 40000
    assert slurm_port("1234_7") == slurm_port("12347")  # array ids are digits too
    assert backend_for("cuda:3") == "nccl" and backend_for("cpu") == "gloo"
