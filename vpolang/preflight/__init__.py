"""Preflight: every condition a trainer or loader would refuse when the job starts, checked at the
recipe line after schema checking. One rule per module, run in order over every checked stage; each
rule returns its diagnostics (codes E0310-E0339, W0302-W0319). What can still only fail at run time
is listed in spec/language.md (§5.2, and one by one in §10, from vpolang/runtime_refusals.py)."""
from __future__ import annotations

from ..diagnostics import Diagnostic
from . import (family_adapter, frames_and_resolution, max_nodes, model_folder, nrg_differentiable,
               online_pairs, pairwise_judge, sequence_parallel, shapes_square, single_process, weights_path,
               zero3)
from .context import Preflight

RULES = (family_adapter.check, frames_and_resolution.check, model_folder.check,
         zero3.check, online_pairs.check, pairwise_judge.check, shapes_square.check,
         single_process.check, weights_path.check, max_nodes.check, nrg_differentiable.check,
         sequence_parallel.check)


def preflight(pf: Preflight) -> list[Diagnostic]:
    """Every rule over every stage; a model several stages use is reported once, at its line."""
    found: list[Diagnostic] = []
    for stage in pf.recipe.stages:
        for rule in RULES:
            found += [d for d in rule(stage, pf) if d not in found]
    return found


__all__ = ["RULES", "Preflight", "preflight"]
