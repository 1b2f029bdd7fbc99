"""E0323: a stage asking for more nodes than its Slurm cluster's `max_nodes`. The field was accepted and
read by nothing; a job over the partition's limit is refused by Slurm or pends forever."""
from __future__ import annotations

from ..diagnostics import Diagnostic, Note
from .context import field_span


def check(stage, pf) -> list[Diagnostic]:
    cluster = stage.cluster
    limit = cluster.spec.get("max_nodes") if cluster and cluster.spec["kind"] == "slurm" else None
    nodes = stage.config.get("nodes", 1)
    if limit is None or nodes <= limit:
        return []
    return [Diagnostic("E0323", f"stage `{stage.id}` asks for {nodes} nodes; cluster `{cluster.name}` allows at "
                       f"most {limit}", field_span(stage, ("nodes",)),
                       hint=f"use nodes <= {limit}, or raise the cluster's `max_nodes`",
                       notes=(Note(f"`max_nodes = {limit}` is set here", cluster.span),))]
