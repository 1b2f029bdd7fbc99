"""E0332: `sequence_parallel = k` that the runtime cannot lay out: k must divide the GPUs the stage's job
runs on (groups of k consecutive ranks hold the same rows) and the attention heads of every policy it
trains (Ulysses gives each rank heads / k of every token), and the family's transformer must have a
context-parallel plan (runtime/parallel/sequence.py; CogVideoX has none in diffusers 0.42); `compile`
is refused beside it (the context-parallel hooks are not compiled by this runtime yet)."""
from __future__ import annotations

from ..diagnostics import Diagnostic
from ..schema.families import VIDEO_FAMILIES
from .context import field_span, policy_bases, processes


def check(stage, pf) -> list[Diagnostic]:
    k = stage.config.get("sequence_parallel", 1)
    if k == 1:
        return []
    span = field_span(stage, ("sequence_parallel",))
    n = processes(stage)
    if n % k:
        options = [d for d in range(2, n + 1) if n % d == 0]
        fix = f"use sequence_parallel = {' or '.join(map(str, options))}" if options else \
            "place the stage on a cluster with several GPUs, or remove `sequence_parallel`"
        return [Diagnostic("E0332", f"stage `{stage.id}`: sequence_parallel = {k} does not divide the {n} "
                           f"process{'es' if n > 1 else ''} it runs on", span, hint=fix)]
    out = []
    if stage.config.get("compile"):
        out.append(Diagnostic("E0332", f"stage `{stage.id}`: `compile = true` does not run with sequence_parallel = {k} "
                              "yet: the runtime does not compile the context-parallel hooks",
                              field_span(stage, ("compile",)), hint="remove `compile`, or set sequence_parallel = 1"))
    for _, name, spec in policy_bases({"model": stage.config.get("model"), "policy": stage.config.get("policy")}):
        family = VIDEO_FAMILIES.get(spec.get("family"))
        if family is not None and not family.sequence_parallel:
            out.append(Diagnostic("E0332", f"stage `{stage.id}`: model `{name}` is of family `{family.name}`, whose "
                                  "transformer the runtime cannot split by sequence", span,
                                  hint="families with sequence parallelism: " + ", ".join(
                                      sorted(f for f, v in VIDEO_FAMILIES.items() if v.sequence_parallel))
                                  + "; remove `sequence_parallel`"))
            continue
        heads = spec.get("heads")
        if heads and heads % k:
            options = [d for d in range(2, heads + 1) if heads % d == 0 and n % d == 0]
            fix = (f"use sequence_parallel = {' or '.join(map(str, options))}" if options
                   else "remove `sequence_parallel`")
            out.append(Diagnostic("E0332", f"stage `{stage.id}`: sequence_parallel = {k} does not divide the {heads} "
                                  f"attention heads of model `{name}`", span, hint=fix))
    return out
