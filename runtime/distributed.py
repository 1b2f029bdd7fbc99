"""Where this process sits in a multi-process job, and the process group that joins them.

Launchers describe the layout in the environment: torchrun (and the local executor, which uses it) sets
RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; Slurm (one task per GPU, as the Slurm
executor asks) sets SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and SLURM_JOB_NODELIST, whose first host
is the rendezvous. Anything else is a single process."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

DEFAULT_PORT = 29500


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = DEFAULT_PORT
    launcher: str = "single"  # single | torchrun | slurm

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment(env: Mapping[str, str] = os.environ) -> DistInfo:
    if "RANK" in env and "WORLD_SIZE" in env:
        return DistInfo(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)),
                        env.get("MASTER_ADDR", "127.0.0.1"), int(env.get("MASTER_PORT", DEFAULT_PORT)), "torchrun")
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return DistInfo(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)),
                        first_host(env.get("SLURM_JOB_NODELIST", "127.0.0.1")),
                        slurm_port(env.get("SLURM_JOB_ID", "0")), "slurm")
    return DistInfo()


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list: `gpu[07-09,12],cpu1` -> `gpu07` (zero padding kept)."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if match is None:
        raise ValueError(f"cannot read the Slurm node list {nodelist!r}")
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def slurm_port(job_id: str) -> int:
    """A rendezvous port derived from the job id, so two jobs sharing a node do not collide."""
    digits = re.sub(r"\D", "", job_id) or "0"
    return 20000 + int(digits) % 20000


def backend_for(device: str) -> str:
    return "nccl" if device.startswith("cuda") else "gloo"


@contextmanager
def process_group(info: DistInfo, device: str) -> Iterator[None]:
    """Joins the job's process group for the duration (nothing to do for a single process)."""
    if info.world_size == 1:
        yield
        return
    import torch.distributed as dist

    # env:// both ways: under torchrun the agent's store already listens at MASTER_ADDR:MASTER_PORT.
    os.environ.setdefault("MASTER_ADDR", info.master_addr)
    os.environ.setdefault("MASTER_PORT", str(info.master_port))
    dist.init_process_group(backend_for(device), init_method="env://", rank=info.rank, world_size=info.world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.world_size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()


def all_agree(flag: bool, info: DistInfo, reduce: str = "max") -> bool:
    """The same answer on every rank (any rank's True with "max", all ranks' True with "min"), so that
    a decision to stop is taken at the same step everywhere instead of leaving ranks in a collective."""
    if info.world_size == 1:
        return flag
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        return flag
    device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX if reduce == "max" else dist.ReduceOp.MIN)
    return bool(value.item() > 0.5)


def free_port() -> int:
    """A TCP port nothing listens on now (for a one-process group that a library insists on)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
