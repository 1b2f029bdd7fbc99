"""W0305: weights a job must load from a local folder, with no `path` set: a video model of a family
that cannot be built from its spec (all but `shapes`), a reward-model backbone, a VLM judge's model, a
CLIP or aesthetic reward, a video reward model. The job stops when it starts. A warning: the catalogue
(std.models, std.rewards) leaves most paths for the recipe to set, and a recipe may be planned before
its weights are placed."""
from __future__ import annotations

from ..diagnostics import Diagnostic
from .context import decl_span, field_span, model_refs, reward_refs

BUILT_FROM_SPEC = ("shapes",)  # video families whose runtime builds the model from the spec alone
NEEDS_PATH = {"clip_score": "a CLIP model", "aesthetic": "a CLIP model and its aesthetic head",
              "video_reward_model": "a trained video reward model"}


def check(stage, pf) -> list[Diagnostic]:
    out = []
    for found in model_refs(stage.config):
        spec = found.ref["spec"]
        if spec.get("kind") == "video_diffusion" and not spec.get("path") and spec["family"] not in BUILT_FROM_SPEC:
            out.append(_warn(f"video model `{found.ref['name']}`", stage, decl_span(stage, found, pf),
                             f'model NAME = {found.ref["name"]} {{ path = "..." }}'))
    backbone = stage.config.get("backbone") if stage.kind == "reward_model" else None
    if backbone and not backbone["spec"].get("path"):
        span = pf.decls[backbone["name"]].span if backbone["name"] in pf.decls else field_span(stage, ("backbone",))
        out.append(_warn(f"backbone `{backbone['name']}`", stage, span,
                         f'model NAME = {backbone["name"]} {{ path = "..." }}'))
    for path, ref in reward_refs(stage.config):
        spec = ref.get("spec") or {}
        kind = spec.get("kind")
        # a VLM judge loads its model's folder; a video reward model its own (the model only names the family)
        missing = not spec.get("model", {}).get("spec", {}).get("path") if kind == "vlm_judge" else \
            kind in NEEDS_PATH and not spec.get("path")
        if missing:
            span = pf.decls[ref["name"]].span if ref["name"] in pf.decls else field_span(stage, path)
            what = NEEDS_PATH.get(kind) or f"its model `{spec['model']['name']}`"
            out.append(_warn(f"reward `{ref['name']}` ({what})", stage, span,
                             f'model NAME = {spec["model"]["name"]} {{ path = "..." }}' if kind == "vlm_judge"
                             else f'reward NAME = {ref["name"]} {{ path = "..." }}'))
    return out


def _warn(what: str, stage, span, example: str) -> Diagnostic:
    return Diagnostic("W0305", f"{what} has no `path`: stage `{stage.id}` plans, and its job stops when it "
                      "starts without local weights", span,
                      hint=f"set `path` to a local folder in the diffusers/transformers layout: `{example}`")
