"""E0316: a pairwise judge (`vlm_judge { pairwise = true }`) used where videos are scored one at a time.
It compares two videos, so it serves as evaluate's `gsb` and as an `on_policy(...)` judge (which asks it
about pairs, both orders under `swap_check`), and as the whole reward of a GRPO stage with
`reward_as = win_rate` (Pref-GRPO: it compares every pair of a group); elsewhere the reward refuses to
score."""
from __future__ import annotations

from ..diagnostics import Diagnostic
from .context import field_span, reward_refs


def _win_rate_reward(stage, path: tuple) -> bool:
    """The judge is a GRPO stage's whole reward (one term, weight 1) under `reward_as = win_rate`."""
    cfg = stage.config
    if stage.kind != "grpo" or cfg.get("reward_as") != "win_rate" or path != ("reward", "terms", 0, "reward"):
        return False
    terms = cfg["reward"]["terms"]
    return len(terms) == 1 and terms[0]["weight"] == 1


def check(stage, pf) -> list[Diagnostic]:
    out = []
    for path, ref in reward_refs(stage.config):
        spec = ref.get("spec") or {}
        if spec.get("kind") != "vlm_judge" or not spec.get("pairwise") or path[:1] == ("gsb",) or "judges" in path:
            continue
        if _win_rate_reward(stage, path):
            continue
        out.append(Diagnostic("E0316", f"`{ref['name']}` is a pairwise judge (pairwise = true): it compares two "
                              "videos and cannot score one", field_span(stage, path),
                              hint="use it as an evaluate stage's `gsb`, an `on_policy` judge or a GRPO stage's whole reward "
                              "with `reward_as = win_rate`, or declare a pointwise judge (pairwise = false) for this "
                              "field"))
    return out
