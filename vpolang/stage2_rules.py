"""Check-time rules of the GRPO reward -> advantage composition (docs/algorithms.md §S2)."""
from __future__ import annotations

from .diagnostics import Reporter


def _label(ref: dict) -> str:
    return ref["name"] + (f".{ref['head']}" if ref.get("head") else "")


def grpo_composition_rules(config: dict, spans: dict, default_span, rep: Reporter) -> bool:
    """E0340: under joint, self-paced weights act on the joint's heads, so its phases must be them."""
    ok = True
    sp, reward = config.get("self_paced"), config.get("reward") or {}
    if sp and reward.get("kind") == "joint":
        phases, heads = [_label(r) for r in sp["phases"]], [_label(r) for r in reward["rewards"]]
        if sorted(phases) != sorted(heads):
            rep.add("E0340", f"self_paced phases [{', '.join(phases)}] are not the joint's rewards "
                    f"[{', '.join(heads)}]", spans.get(("self_paced", "phases"), spans.get(("self_paced",), default_span)),
                    hint="under reward = joint(...) the curriculum weights the joint's heads: list the same rewards "
                         "in curriculum order")
            ok = False
    return ok
