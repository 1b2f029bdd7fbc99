"""E0311 / E0312: `compile` and `ema` with ZeRO-3. ZeRO-3's parameter hooks break the compiled graphs,
and it partitions the weights an EMA reads; the trainers refuse both."""
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
    return out


def _note(span) -> tuple[Note, ...]:
    return (Note("ZeRO-3 is chosen here", span),)
