"""Lint rules: static queries over a checked recipe, one rule per module, each with its own code."""
from __future__ import annotations

from ..api import CheckResult
from ..diagnostics import Diagnostic
from . import dpo_beta_range, grpo_without_kl, missing_against

RULES = (grpo_without_kl.check, dpo_beta_range.check, missing_against.check)


def lint(result: CheckResult) -> list[Diagnostic]:
    if result.recipe is None:
        return []
    return [d for rule in RULES for stage in result.recipe.stages for d in rule(stage)]
