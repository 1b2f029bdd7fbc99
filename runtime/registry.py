"""The one registry from job kind to trainer. Executors find trainers only through it.

A trainer is a module with `run(ctx: JobContext) -> None`: it sets up from `ctx.config`, resumes from
`ctx.checkpoints.latest_valid()`, trains with periodic checkpoints (and on `ctx.stop_requested`), and
writes its outputs under `ctx.output_path(name)` for every name in `ctx.job.outputs`."""
from __future__ import annotations

import importlib
from typing import Callable

TRAINERS: dict[str, str | Callable] = {
    "sft": "runtime.trainers.sft:run",
    "grpo": "runtime.trainers.grpo:run",
    "dpo": "runtime.trainers.dpo:run",
    "synthesize": "runtime.trainers.synthesize:run",
    "generate": "runtime.trainers.generate:run",
    "judge": "runtime.trainers.judge:run",
    "evaluate": "runtime.trainers.evaluate:run",
}


def _from_environment() -> None:
    """VPO_TRAINERS="kind=module:function,...": extra trainers for subprocess jobs (plugins, tests)."""
    import os

    for item in filter(None, os.environ.get("VPO_TRAINERS", "").split(",")):
        kind, _, target = item.partition("=")
        TRAINERS[kind.strip()] = target.strip()


_from_environment()


def register(kind: str, fn: Callable) -> None:
    TRAINERS[kind] = fn


def trainer_for(kind: str) -> Callable:
    target = TRAINERS.get(kind)
    if target is None:
        from .errors import JobError
        raise JobError(f"this vpo runtime has no trainer for `{kind}` jobs yet "
                       f"(available: {', '.join(sorted(TRAINERS))})")
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
