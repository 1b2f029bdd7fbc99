"""E0315: LoRA with `reference = refresh(every = K)`. With LoRA the reference is the base model (the
adapters switched off); moving it to the current policy would need a second full copy of the merged
weights, which the planner does not budget, so the trainer stopped at step K. Rejected here."""
from __future__ import annotations

from ..diagnostics import Diagnostic, Note
from .context import field_span


def check(stage, pf) -> list[Diagnostic]:
    cfg = stage.config
    if stage.kind != "dpo" or cfg["reference"].get("kind") != "refresh" or not cfg.get("lora_rank"):
        return []
    return [Diagnostic("E0315", f"`reference = refresh(every = {cfg['reference']['every']})` does not run with "
                       "LoRA: the LoRA reference is the base model", field_span(stage, ("reference",)),
                       hint="train the full model (lora_rank = 0) or keep `reference = frozen`",
                       notes=(Note("LoRA is chosen here", field_span(stage, ("lora_rank",))),))]
