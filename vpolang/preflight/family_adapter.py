"""E0310: a video model whose family this runtime has no adapter for (HunyuanVideo, LTX-Video are in the
catalogue for planning): the loader would stop the job when it starts."""
from __future__ import annotations

from ..diagnostics import Diagnostic
from ..schema.families import VIDEO_FAMILIES, runtime_families
from .context import decl_span, model_refs


def check(stage, pf) -> list[Diagnostic]:
    out = []
    for found in model_refs(stage.config):
        spec = found.ref["spec"]
        family = VIDEO_FAMILIES.get(spec.get("family"))
        if spec.get("kind") != "video_diffusion" or family is None or family.adapter:
            continue
        out.append(Diagnostic(
            "E0310", f"model `{found.ref['name']}` is of family `{family.name}`, which this runtime cannot load "
            f"(stage `{stage.id}` uses it)", decl_span(stage, found, pf),
            hint=f"families with a runtime adapter: {', '.join(runtime_families())}; `{family.name}` needs an "
            "adapter module in runtime/models/"))
    return out
