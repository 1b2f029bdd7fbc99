"""E0313 / E0314: online DPO pairs on several processes (each rank would keep a different number of
judged pairs), and `mixed_resolution` with online pairs (online candidates are sampled at the stage's
resolution). The DPO trainer refuses both."""
from __future__ import annotations

from ..diagnostics import Diagnostic
from .context import field_span, processes


def check(stage, pf) -> list[Diagnostic]:
    cfg = stage.config
    if stage.kind != "dpo" or cfg["pairs"].get("kind") != "online":
        return []
    out = []
    n = processes(stage)
    if n > 1:
        out.append(Diagnostic("E0313", f"online pairs train in one process, but stage `{stage.id}` is placed on "
                              f"{n} GPUs", field_span(stage, ("pairs",)),
                              hint="place the stage on one GPU (a cluster with gpus_per_node = 1, nodes = 1), "
                              "or generate the pairs first with on_policy(...)"))
    if cfg.get("mixed_resolution"):
        out.append(Diagnostic("E0314", "`mixed_resolution` does not apply to online pairs: they are sampled at "
                              "the stage's resolution", field_span(stage, ("mixed_resolution",)),
                              hint="remove `mixed_resolution`, or use offline, synthetic or on_policy pairs"))
    return out
