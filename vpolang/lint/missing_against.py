"""W0107: an evaluation that compares the policy with nothing."""
from __future__ import annotations

from ..diagnostics import Diagnostic


def check(stage) -> list[Diagnostic]:
    if stage.kind == "evaluate" and not stage.config["against"]:
        return [Diagnostic("W0107", f"stage `{stage.id}` evaluates one policy against nothing", stage.span,
                           hint="add `against = [base, ...]` to see what training changed")]
    return []
