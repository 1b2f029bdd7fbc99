"""JobContext: everything a trainer gets to run one plan job, and nothing it has to find on its own."""
from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpolang.plan import TRAINING_KINDS, ExecutionBlock, Job, Plan

from .checkpoint import CheckpointManager
from .distributed import DistInfo, all_agree
from .errors import JobError
from .rundir import JobDir, RunDir

# Which signal asks for what: Slurm sends SIGUSR2 (or SIGTERM) before preempting or at the time
# limit, the local executor forwards Ctrl-C as SIGINT. All three mean "checkpoint and stop".
STOP_SIGNALS = {signal.SIGTERM: "terminated", signal.SIGUSR2: "preempted", signal.SIGINT: "interrupted"}


@dataclass
class JobContext:
    plan: Plan
    job: Job
    run: RunDir
    dir: JobDir
    dist: DistInfo = field(default_factory=DistInfo)
    device: str = "cpu"
    stop_event: threading.Event = field(default_factory=threading.Event)
    stop_reason: str | None = None
    checkpoints: CheckpointManager = field(init=False)
    _trackers: Any = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.checkpoints = CheckpointManager(self.dir.checkpoints, log=self.warn)  # fallbacks reach the terminal

    # ---- the job
    @property
    def config(self) -> dict[str, Any]:
        return self.job.config

    @property
    def execution(self) -> ExecutionBlock:
        """The schedule the plan chose for this training job; the trainers execute it as is."""
        block = self.job.execution
        if block is None:
            raise JobError(f"the plan gives this {self.job.kind} job no execution block; "
                           "re-create the plan with `vpo plan`")
        return block

    def check_execution(self) -> None:
        """A training job runs on as many processes as its block was planned for, or not at all: the
        rank split, the micro-batches and the optimiser were chosen for that world."""
        if self.job.kind not in TRAINING_KINDS:
            return
        block = self.execution
        if block.world_size != self.world_size:
            raise JobError(f"the plan's execution block is for {block.world_size} process(es), "
                           f"this job was started on {self.world_size}; re-plan for this placement")
        self.log(f"execution block: {block.summary()} ({block.model_dump_json()})")

    @property
    def recipe_dir(self) -> Path:
        """Relative data paths in a recipe are relative to the recipe's folder."""
        return Path(self.plan.recipe.path).resolve().parent

    @property
    def input_paths(self) -> dict[str, Path]:
        """Every input slot's artifact folder (it is the upstream job's folder for its current hash)."""
        return {slot: self.run.artifact_path(self.plan, ref.job, ref.name) for slot, ref in self.job.inputs.items()}

    def input_path(self, slot: str) -> Path:
        ref = self.job.inputs[slot]
        path = self.input_paths[slot]
        if not path.exists():
            raise JobError(f"input `{slot}` ({ref.job}/{ref.name}) is missing at {path}; "
                           f"run `{ref.job}` first")
        return path

    @property
    def output_paths(self) -> dict[str, Path]:
        return {name: self.dir.artifact(name) for name in self.job.outputs}

    def output_path(self, name: str) -> Path:
        """Where output `name` goes (its parent exists; write it whole, e.g. to a temporary name first)."""
        path = self.dir.artifact(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # ---- distribution
    @property
    def rank(self) -> int:
        return self.dist.rank

    @property
    def world_size(self) -> int:
        return self.dist.world_size

    @property
    def local_rank(self) -> int:
        return self.dist.local_rank

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    # ---- logging
    def log(self, message: str) -> None:
        who = f" rank {self.rank}" if self.world_size > 1 else ""
        self.dir.root.mkdir(parents=True, exist_ok=True)
        with self.dir.log_path.open("a") as handle:
            handle.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}{who}] {message}\n")

    def warn(self, message: str) -> None:
        """Logged, and kept in status.json (main rank), from where `vpo run` shows it in the terminal and
        `vpo status` lists it: the job's own stderr only reaches log.txt."""
        self.log(f"warning: {message}")
        if self.is_main:
            self.dir.add_warning(message)

    def activity(self, what: str, done: int | None = None, total: int | None = None) -> None:
        """What the job is doing now, e.g. ("sampling rollouts", 3, 8): `vpo run`'s bar and plain lines
        show it between steps (main rank only; cheap enough to call per batch)."""
        if self.is_main:
            self.dir.write_activity(what, done, total)

    def metrics(self, step: int, **values: Any) -> None:
        """One JSON record per step in metrics.jsonl (main rank only), flushed so progress can read it."""
        if not self.is_main:
            return
        record: dict[str, Any] = {"step": int(step), "time": round(time.time(), 3)}
        record.update({k: None if v is None else as_float(v) for k, v in values.items()})
        trackers = self.trackers  # opened before the first write: it skips what earlier attempts tracked
        self.dir.root.mkdir(parents=True, exist_ok=True)
        with self.dir.metrics_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
        if trackers is not None:
            trackers.record(record)

    @property
    def trackers(self):
        """The job's TensorBoard / wandb sinks (runtime/tracking), on the main rank when its placement
        names any; else None."""
        if self._trackers is None and self.is_main and self.job.placement.track:
            from .tracking import Trackers, missing

            problem = missing(self.job.placement.track)
            if problem:
                raise JobError(f"placement.track: {problem}")
            last = self.dir.last_metrics() or {}
            self._trackers = Trackers(self.job.placement.track, self.run.root, self.job.id, self.job.hash,
                                      self.plan.recipe.name, self.job.config.model_dump(mode="json"),
                                      int(last.get("step", 0)),
                                      warn=self.warn)
        return self._trackers

    def track_histogram(self, step: int, name: str, values: Any) -> None:
        """A distribution (e.g. GRPO's advantages) for the trackers; nothing without one."""
        if self.trackers is not None:
            self.trackers.histogram(step, name, values)

    def track_video(self, step: int, name: str, video: Any) -> None:
        """A video (F, 3, H, W) or a grid (N, F, 3, H, W) in [-1, 1] for the trackers."""
        if self.trackers is not None:
            self.trackers.video(step, name, video)

    def close_trackers(self) -> None:
        if self._trackers is not None:
            self._trackers.close()
            self._trackers = None

    # ---- safety
    def check_finite(self, loss: Any, step: int, what: str = "loss") -> None:
        """Stops the job (JobError naming the recipe line) when `loss` is NaN or infinite on any rank.
        Call it before saving the step's checkpoint: the last good checkpoint then stays the latest."""
        value = as_float(loss)
        if all_agree(math.isfinite(value), self.dist, reduce="min"):
            return
        last = self.checkpoints.latest_valid()
        kept = f"; the last good checkpoint (step {last[0]}) is kept" if last else ""
        raise JobError(f"{what} became {value} at step {step}{kept}. "
                       "Lower `lr` or raise `grad_clip`.")

    @property
    def where(self) -> str:
        """The stage and its recipe line, for error messages: stage `rl` (recipe.vpo:12:1)."""
        return f"stage `{self.job.stage}`" + (f" ({self.job.span})" if self.job.span else "")

    # ---- stopping early (preemption, time limit, Ctrl-C)
    @property
    def stop_requested(self) -> bool:
        """Set on SIGTERM/SIGUSR2/SIGINT: checkpoint at the next step boundary and return."""
        return self.stop_event.is_set()

    def request_stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason
        self.stop_event.set()

    def should_stop(self) -> bool:
        """stop_requested, agreed across ranks (every rank stops at the same step)."""
        return all_agree(self.stop_requested, self.dist)

    def install_signal_handlers(self) -> None:
        def request(signum, frame):
            self.request_stop(STOP_SIGNALS[signal.Signals(signum)])
            self.log(f"received {signal.Signals(signum).name}: will checkpoint and stop")

        if threading.current_thread() is not threading.main_thread():
            return
        for sig in STOP_SIGNALS:
            signal.signal(sig, request)

    # ---- determinism
    def seed_everything(self, offset: int = 0) -> int:
        """Seeds python, numpy and torch (every device) from the job's seed."""
        import numpy as np
        import torch

        seed = self.job.seed + offset
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        return seed


def as_float(value: Any) -> float:
    """A Python float from a number or a one-element tensor (detached: no autograd warning)."""
    return float(value.detach() if hasattr(value, "detach") else value)


def rng_state() -> dict[str, Any]:
    """Every RNG a trainer may draw from, to store in a checkpoint."""
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def device_for(local_rank: int) -> str:
    """This process's GPU, or the CPU (also when VPO_DEVICE=cpu asks for it)."""
    if os.environ.get("VPO_DEVICE", "") == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}"
    return "cpu"
