"""W0304: a stage whose trainer runs in one process, placed on several GPUs. The executors start one
process per GPU of the placement and the job stops at once. A warning for now, not an error: the
shipped teleboost and ipo recipes place `evaluate` on 8 GPUs; the fix belongs in lowering (place
these kinds on one GPU, as it does for `judge` and `synthesize` jobs)."""
from __future__ import annotations

from ..diagnostics import Diagnostic
from .context import processes

# Job kinds whose runtime trainer is not data parallel (runtime/registry.py: no `run.distributed`);
# tests/runtime/test_registry.py checks the runtime agrees.
SINGLE_PROCESS_KINDS = ("evaluate", "judge", "synthesize")


def check(stage, pf) -> list[Diagnostic]:
    n = processes(stage)
    if stage.kind not in SINGLE_PROCESS_KINDS or n == 1:
        return []
    return [Diagnostic("W0304", f"the `{stage.kind}` trainer runs in one process, but stage `{stage.id}` is "
                       f"placed on {n} GPUs: its job stops when it starts", stage.spans.get(("on",), stage.span),
                       hint="place it on a cluster with gpus_per_node = 1 (nodes = 1)")]
