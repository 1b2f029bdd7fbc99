"""JobContext: everything a trainer gets to run one plan job."""
from __future__ import annotations

import json
import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpolang.plan import Job, Plan

from .checkpoint import CheckpointManager
from .errors import JobError
from .rundir import JobDir, RunDir


@dataclass
class JobContext:
    plan: Plan
    job: Job
    run: RunDir
    dir: JobDir
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    stop_requested: bool = False
    checkpoints: CheckpointManager = field(init=False)

    def __post_init__(self):
        self.checkpoints = CheckpointManager(self.dir.checkpoints, log=self.log)

    # ---- paths
    @property
    def config(self) -> dict[str, Any]:
        return self.job.config

    @property
    def recipe_dir(self) -> Path:
        return Path(self.plan.recipe.path).resolve().parent

    def input_path(self, slot: str) -> Path:
        ref = self.job.inputs[slot]
        path = self.run.artifact_path(self.plan, ref.job, ref.name)
        if not path.exists():
            raise JobError(f"input `{slot}` ({ref.job}/{ref.name}) is missing at {path}; run `{ref.job}` first")
        return path

    def output_path(self, name: str) -> Path:
        path = self.dir.artifact(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---- logging
    def log(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        with self.dir.log_path.open("a") as handle:
            handle.write(line + "\n")

    def metrics(self, step: int, **values: float) -> None:
        if not self.is_main:
            return
        record = {"step": step, "time": round(time.time(), 3)}
        record.update({k: (float(v) if v is not None else None) for k, v in values.items()})
        with self.dir.metrics_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()

    # ---- safety
    def check_finite(self, value: float, step: int, what: str = "loss") -> None:
        if not math.isfinite(value):
            last = self.checkpoints.latest_valid()
            where = f" ({self.job.span})" if self.job.span else ""
            kept = f"; the last good checkpoint (step {last[0]}) is kept" if last else ""
            raise JobError(f"stage `{self.job.stage}`{where}: {what} became {value} at step {step}{kept}. "
                           "Lower `lr` or raise `grad_clip`.")

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGUSR2 (Slurm preemption, timeouts) ask the trainer to checkpoint and stop."""
        def request(signum, frame):
            self.stop_requested = True
            self.log(f"signal {signum}: will checkpoint and stop")
        for sig in (signal.SIGTERM, signal.SIGUSR2):
            try:
                signal.signal(sig, request)
            except ValueError:  # not the main thread (tests)
                pass

    # ---- determinism
    def seed_everything(self, offset: int = 0) -> int:
        import numpy as np
        import torch

        seed = self.job.seed + offset
        random.seed(seed)
        np.random.seed(seed % (2**32))
        torch.manual_seed(seed)
        return seed


def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def device_for(local_rank: int) -> str:
    import torch

    if torch.cuda.is_available() and os.environ.get("VPO_DEVICE", "") != "cpu":
        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}"
    return "cpu"
