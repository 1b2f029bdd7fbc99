"""W0301: a vision-language model (judge, critic or reward-model backbone) of a family the runtime cannot
load (VILA, LLaVA). A warning, not an error: the shipped IPO recipe plans its VILA critic; the job
that loads it stops when it starts."""
from __future__ import annotations

from ..diagnostics import Diagnostic
from ..schema.families import VISION_LANGUAGE_ADAPTERS
from .context import decl_span, model_refs


def check(stage, pf) -> list[Diagnostic]:
    out = []
    for found in model_refs(stage.config):
        spec = found.ref["spec"]
        if spec.get("kind") != "vision_language" or spec.get("family") in VISION_LANGUAGE_ADAPTERS:
            continue
        out.append(Diagnostic(
            "W0301", f"vision-language model `{found.ref['name']}` is of family `{spec.get('family')}`, which "
            f"this runtime cannot load: stage `{stage.id}` plans, and its job stops when it starts",
            decl_span(stage, found, pf),
            hint=f"use a {', '.join(VISION_LANGUAGE_ADAPTERS[:2])} model, e.g. models.qwen2_vl_7b"))
    return out
