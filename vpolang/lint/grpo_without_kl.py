"""W0105: GRPO with no KL to the reference and no gate invites reward hacking."""
from __future__ import annotations

from ..diagnostics import Diagnostic


def check(stage) -> list[Diagnostic]:
    cfg = stage.config
    if stage.kind == "grpo" and cfg["kl"] == 0 and cfg.get("gate") is None:
        return [Diagnostic("W0105", f"stage `{stage.id}` optimises its reward with no KL term and no gate",
                           stage.spans.get(("reward",), stage.span),
                           hint="add `kl = 0.01` or a `gate`; unconstrained GRPO is known to hack rewards")]
    return []
