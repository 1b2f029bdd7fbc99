"""E0330: `nodes > 1` on a stage whose trainer runs in one process (`evaluate`). Lowering places such a
job on the one GPU it uses (vpolang/lower.py, as it does for `judge` and `synthesize` jobs), so a
cluster with 8 GPUs per node costs one GPU; asking for several nodes would be accepted and ignored.
(W0304, the warning about an evaluate job placed on a whole node, is retired: that placement no longer
happens.)"""
from __future__ import annotations

from vpolang.plan import SINGLE_PROCESS_KINDS

from ..diagnostics import Diagnostic
from .context import field_span


def check(stage, pf) -> list[Diagnostic]:
    nodes = stage.config.get("nodes", 1)
    if stage.kind not in SINGLE_PROCESS_KINDS or nodes == 1:
        return []
    return [Diagnostic("E0330", f"the `{stage.kind}` trainer runs in one process on one GPU, but stage "
                       f"`{stage.id}` asks for nodes = {nodes}", field_span(stage, ("nodes",)),
                       hint="remove `nodes`: the job is placed on one GPU of its cluster")]
