"""E0316: a pairwise judge (`vlm_judge { pairwise = true }`) used where videos are scored one at a time.
It compares two videos, so it serves as evaluate's `gsb` and as an `on_policy(...)` judge (which asks it
about pairs, both orders under `swap_check`); elsewhere the reward refuses to score."""
from __future__ import annotations

from ..diagnostics import Diagnostic
from .context import field_span, reward_refs


def check(stage, pf) -> list[Diagnostic]:
    out = []
    for path, ref in reward_refs(stage.config):
        spec = ref.get("spec") or {}
        if spec.get("kind") != "vlm_judge" or not spec.get("pairwise") or path[:1] == ("gsb",) or "judges" in path:
            continue
        out.append(Diagnostic("E0316", f"`{ref['name']}` is a pairwise judge (pairwise = true): it compares two "
                              "videos and cannot score one", field_span(stage, path),
                              hint="use it as an evaluate stage's `gsb` or an `on_policy` judge, or declare a pointwise judge "
                              "(pairwise = false) for this field"))
    return out
