"""E0311 / E0312 / E0331: `compile`, `ema`, and a refreshed LoRA reference with ZeRO-3. ZeRO-3's parameter
hooks break the compiled graphs, it partitions the weights an EMA reads, and its hooks cannot run the
transformer with the adapter snapshot a refreshed LoRA reference swaps in; the trainers refuse all
three."""
from __future__ import annotations

from ..diagnostics import Diagnostic, Note
from .context import field_span


def check(stage, pf) -> list[Diagnostic]:
    cfg = stage.config
    if cfg.get("zero_stage") != 3:
        return []
    out = []
    zero = field_span(stage, ("zero_stage",))
    if cfg.get("compile"):
        out.append(Diagnostic("E0311", "`compile = true` does not run with `zero_stage = 3`: ZeRO-3's parameter "
                              "hooks break the compiled graphs", field_span(stage, ("compile",)),
                              hint="use zero_stage <= 2 or remove `compile`", notes=_note(zero)))
    if cfg.get("ema") is not None:
        out.append(Diagnostic("E0312", "`ema` does not run with `zero_stage = 3`: ZeRO-3 partitions the weights "
                              "the average reads", field_span(stage, ("ema",)),
                              hint="use zero_stage <= 2 or remove `ema`", notes=_note(zero)))
    lora_refresh = stage.kind == "dpo" and cfg.get("lora_rank") and cfg["reference"].get("kind") == "refresh"
    if lora_refresh:
        out.append(Diagnostic("E0331", "`reference = refresh(...)` with LoRA does not run with `zero_stage = 3`: "
                              "ZeRO-3's hooks cannot run the adapter snapshot the reference becomes",
                              field_span(stage, ("reference",)),
                              hint="use zero_stage <= 2 (LoRA's optimiser state is small) or train fully",
                              notes=_note(zero)))
    return out


def _note(span) -> tuple[Note, ...]:
    return (Note("ZeRO-3 is chosen here", span),)
