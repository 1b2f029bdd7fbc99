"""Building rewards from the plan's reward references and scoring reward expressions.

A reference is the dict the compiler emits: {"ref": "reward", "name", "head", "heads", "spec", "stage",
"input"}. Rewards are built once per spec and cached; `score_reward` returns a (B,) float tensor."""
from __future__ import annotations

import json
from typing import Any, Callable

import torch

from runtime.errors import JobError

Scorer = Callable[[torch.Tensor, list[str]], dict[str, torch.Tensor]]
_CACHE: dict[str, Scorer] = {}


def _key(ref: dict) -> str:
    return json.dumps({"spec": ref.get("spec"), "stage": ref.get("stage")}, sort_keys=True)


def build_reward(ref: dict, ctx=None) -> Scorer:
    key = _key(ref)
    if key not in _CACHE:
        _CACHE[key] = _build(ref, ctx)
    return _CACHE[key]


def _build(ref: dict, ctx) -> Scorer:
    spec = ref.get("spec")
    if spec is None:
        raise JobError(f"reward `{ref['name']}` comes from a reward_model stage, which this runtime cannot "
                       "load yet")
    kind = spec["kind"]
    if kind == "shapes":
        from runtime.shapes import rewards as shapes
        fn = shapes.METRICS[spec["metric"]]
        return lambda videos, prompts: {"score": fn(videos, prompts)}
    if kind == "weight_free":
        from . import weight_free
        fn = weight_free.METRICS[spec["metric"]]
        return lambda videos, prompts: {"score": fn(videos, spec.get("resize", 64))}
    raise JobError(f"reward `{ref['name']}` ({kind}) needs model weights that this runtime cannot load yet; "
                   "weight-free and shapes-world rewards are available")


def score_reward(ref: dict, videos: torch.Tensor, prompts: list[str], ctx=None) -> torch.Tensor:
    """Scores of one reward reference: its head, `overall` (the sum of heads), or its single score."""
    heads = build_reward(ref, ctx)(videos.detach().float().cpu(), list(prompts))
    head = ref.get("head")
    if head in (None, "score") and "score" in heads:
        return heads["score"].float()
    if head == "overall" or head is None:
        return sum(v.float() for k, v in heads.items() if k != "overall")
    return heads[head].float()


def score_expression(expr: dict, videos: torch.Tensor, prompts: list[str], ctx=None) -> dict[str, Any]:
    """`sum`: {"total": weighted sum, "terms": {name: scores}}; `joint`: {"terms": ..., "joint": [...]}."""
    if expr["kind"] == "sum":
        terms = {_label(t["reward"]): score_reward(t["reward"], videos, prompts, ctx) for t in expr["terms"]}
        total = sum(t["weight"] * terms[_label(t["reward"])] for t in expr["terms"])
        return {"total": total, "terms": terms}
    if expr["kind"] == "joint":
        terms = {_label(r): score_reward(r, videos, prompts, ctx) for r in expr["rewards"]}
        return {"terms": terms, "joint": list(terms.values())}
    raise ValueError(f"unknown reward expression {expr['kind']!r}")


def gate_mask(gate: dict, videos: torch.Tensor, prompts: list[str], ctx=None) -> torch.Tensor:
    """True where the sample satisfies the gate."""
    r = score_reward(gate["reward"], videos, prompts, ctx)
    t = gate["threshold"]
    return {">=": r >= t, ">": r > t, "<=": r <= t, "<": r < t}[gate["op"]]


def _label(ref: dict) -> str:
    return ref["name"] + (f".{ref['head']}" if ref.get("head") else "")
