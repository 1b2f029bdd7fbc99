"""E0324: reward guidance (`nrg(reward)`) with a reward that has no gradient. NRG follows the reward's
gradient through the decoded video; the runtime found out at the first guided step. The rewards below
compute their scores off the autograd graph (OpenCV optical flow, the shapes world's blob finder);
tests/rewards/test_nrg_differentiable.py checks the table against the runtime's rewards."""
from __future__ import annotations

from ..diagnostics import Diagnostic
from .context import field_span

# reward kind -> metrics without a gradient (None: every metric of the kind)
NOT_DIFFERENTIABLE: dict[str, tuple[str, ...] | None] = {
    "weight_free": ("flow_magnitude", "dynamic_degree"),
    "shapes": None,
}


def differentiable(spec: dict) -> bool:
    metrics = NOT_DIFFERENTIABLE.get(spec.get("kind"), ())
    return not (metrics is None or spec.get("metric") in metrics)


def check(stage, pf) -> list[Diagnostic]:
    guidance = stage.config.get("guidance")
    if not isinstance(guidance, dict) or guidance.get("kind") != "nrg":
        return []
    ref = guidance["reward"]
    spec = ref.get("spec") or {}
    if differentiable(spec):
        return []
    return [Diagnostic("E0324", f"`{ref['name']}` has no gradient, so it cannot guide sampling (nrg)",
                       field_span(stage, ("guidance",)),
                       hint="guide with a reward model, CLIP, or temporal_flicker, motion_smoothness or sharpness")]
