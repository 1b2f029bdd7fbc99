"""What names denote once resolved: declarations, stages, modules, constructors and iterate rounds."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .source import Span


@dataclass
class DeclValue:
    """A checked model, dataset, reward or cluster declaration."""

    decl_kind: str  # model | dataset | reward | cluster
    name: str  # as written where it was referenced: `models.wan21_t2v_1_3b`
    spec: dict[str, Any]
    span: Span
    spans: dict[tuple, Span] = field(default_factory=dict)  # field path -> span, for data preflight

    def heads(self) -> list[str]:
        return list(self.spec.get("heads", [])) if self.decl_kind == "reward" else []


@dataclass
class StageValue:
    id: str  # `sft`, `ipo.r2.tuned`
    kind: str
    produces: str
    config: dict[str, Any]  # validated, defaults filled (model_dump of the schema)
    span: Span
    cluster: DeclValue | None
    base_model: dict[str, Any] | None  # the video_diffusion spec a policy descends from
    heads: list[str] = field(default_factory=list)  # reward_model stages
    spans: dict[tuple, Span] = field(default_factory=dict)  # field path -> span, for late errors

    def ref(self) -> dict[str, Any]:
        return {"ref": "stage", "name": self.id, "stage_kind": self.kind, "produces": self.produces,
                "base_model": self.base_model, "heads": self.heads}


@dataclass
class ModuleValue:
    name: str
    scope: Any  # resolve.ModuleScope


@dataclass
class ConstructorValue:
    """A built-in constructor name: `prompts`, `video_diffusion`, `sft`, ..."""

    name: str
    role: str  # model | dataset | reward | cluster | value | stage


@dataclass
class IterateValue:
    name: str
    rounds: list[dict[str, Any]]  # per round: name -> value (stages declared in the round)
    finals: dict[str, Any]  # iterate variables after the last round
    span: Span


@dataclass
class RoundValue:
    iterate: IterateValue
    index: int  # 1-based

    @property
    def names(self) -> dict[str, Any]:
        return self.iterate.rounds[self.index - 1]
