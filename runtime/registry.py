"""The one registry from job kind to trainer. Executors and the job entry find trainers only here.

The trainer protocol (one flat module per kind, `runtime/trainers/<kind>.py`):

    def run(ctx: JobContext) -> None

1. set up from `ctx.config` (fully resolved by the compiler) and `ctx.input_path(slot)`;
2. resume: `found = ctx.checkpoints.latest_valid()`; when found, load model, optimiser, RNG
   (`runtime.context.set_rng_state`) and data cursor from `ctx.checkpoints.load(found[1])`;
3. train, calling `ctx.check_finite(loss, step)` and `ctx.metrics(step, loss=..., ...)` every step and
   `ctx.checkpoints.save(step, {...state..., "rng": rng_state()})` every `checkpoint_every` steps;
4. when `ctx.should_stop()` (preemption, time limit, Ctrl-C): save a checkpoint and return at once;
   the job entry records the job as resumable and a later attempt continues from there;
5. otherwise write every output in `ctx.job.outputs` under `ctx.output_path(name)`, whole or not at all,
   and return. Raise `runtime.errors.JobError` for problems the user can fix: it is reported without a
   traceback, at the recipe line of the stage.

A trainer that can run as several processes (one per GPU, joined by torch.distributed) says so with
`run.distributed = True`; the job entry refuses to start the others with more than one process rather
than letting every process train alone and race on the outputs."""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import TYPE_CHECKING, Callable, Protocol, Union

from vpolang.jobconfig import JOB_KINDS

from .errors import JobError

if TYPE_CHECKING:
    from .context import JobContext


class Trainer(Protocol):
    def __call__(self, ctx: "JobContext") -> None: ...


KINDS = JOB_KINDS  # vpolang/jobconfig.py: the one table of job kinds
TRAINERS: dict[str, Union[str, Trainer]] = {kind: f"runtime.trainers.{kind}:run" for kind in KINDS}


def register(kind: str, fn: Union[str, Trainer]) -> None:
    """Make `fn` (a callable or a lazy "module:function" string) the trainer for `kind` jobs."""
    TRAINERS[kind] = fn


def _register_from_environment() -> None:
    """VPO_TRAINERS="kind=module:function,...": trainers for job processes the executors start
    (plugins, test doubles), which do not share the parent's registry."""
    for item in filter(None, os.environ.get("VPO_TRAINERS", "").split(",")):
        kind, _, target = item.partition("=")
        if not target or ":" not in target:
            raise ValueError(f"VPO_TRAINERS expects kind=module:function, got {item!r}")
        register(kind.strip(), target.strip())


_register_from_environment()


def trainer_for(kind: str) -> Trainer:
    target = TRAINERS.get(kind)
    if target is None:
        raise JobError(f"this vpo runtime has no trainer for `{kind}` jobs; it runs: {', '.join(available_kinds())}")
    if callable(target):
        return target
    module_name, _, name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:  # the trainer exists but something it imports does not
            raise
        raise JobError(f"this vpo runtime has no trainer for `{kind}` jobs yet ({module_name} is not there); "
                       f"it runs: {', '.join(available_kinds())}") from exc
    return getattr(module, name)


def available_kinds() -> list[str]:
    """The kinds whose trainer is present (found without importing it)."""
    return sorted(kind for kind, target in TRAINERS.items()
                  if callable(target) or importlib.util.find_spec(target.partition(":")[0]) is not None)


def supports_distributed(trainer: Callable) -> bool:
    return bool(getattr(trainer, "distributed", False))
