"""W0106: a DPO beta far outside the range ALGORITHMS.md §6 recommends for the model's prediction type."""
from __future__ import annotations

from ..diagnostics import Diagnostic

RANGES = {"velocity": (100.0, 2000.0), "epsilon": (1000.0, 10000.0)}


def check(stage) -> list[Diagnostic]:
    if stage.kind != "dpo" or stage.config.get("beta") is None or stage.base_model is None:
        return []
    beta = stage.config["beta"]
    values = [beta["value"]] if beta["kind"] == "constant" else [beta["start"], beta["end"]]
    lo, hi = RANGES[stage.base_model["prediction"]]
    # TeleBoost runs 5000 on Wan (velocity): only an order of magnitude outside the range is flagged
    bad = [v for v in values if not lo / 10 <= v <= hi * 5]
    if not bad:
        return []
    return [Diagnostic("W0106", f"beta {bad[0]:g} is far from the {lo:g}-{hi:g} usual for "
                       f"{stage.base_model['prediction']}-prediction models", stage.spans.get(("beta",), stage.span),
                       hint="Flow-DPO (velocity) uses 100-2000; Diffusion-DPO (epsilon) about 5000")]
