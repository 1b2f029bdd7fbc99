"""What the preflight rules share: the checked recipe, the recipe's own declarations (to point at the
line that declared a model or reward), and walks over a stage's config."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..check import CheckedRecipe
from ..errors_map import span_for
from ..source import Span
from ..values import DeclValue, StageValue


@dataclass
class Preflight:
    recipe: CheckedRecipe
    recipe_dir: Path | None
    decls: dict[str, DeclValue] = field(default_factory=dict)  # the recipe file's own declarations by name


@dataclass(frozen=True)
class Found:
    """A model reference somewhere in a stage's config: the field path, the reference, and the names of
    the declarations it is reached through (outermost first: `critic` for `critic`'s `model`)."""

    path: tuple
    ref: dict
    via: tuple[str, ...]


def model_refs(value: Any, path: tuple = (), via: tuple[str, ...] = ()) -> Iterator[Found]:
    """Every `{"ref": "model", ...}` inside a config, also inside declared rewards' specs."""
    if isinstance(value, dict):
        if value.get("ref") == "model":
            yield Found(path, value, via + (value["name"],))
            return
        if value.get("ref") in ("reward", "stage"):
            inner = via + (value["name"],)
            if value.get("spec"):
                yield from model_refs(value["spec"], path, inner)
            return
        for key, item in value.items():
            yield from model_refs(item, path + (key,), via)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from model_refs(item, path + (i,), via)


def field_span(stage: StageValue, path: tuple) -> Span:
    """The span of a stage field (or the nearest enclosing field written in the recipe)."""
    return span_for(tuple(path), stage.spans, stage.span)


def decl_span(stage: StageValue, found: Found, pf: Preflight) -> Span:
    """The line of the recipe's declaration the model is reached through (the innermost the recipe
    declared: `model base = models.hunyuan_video { ... }`), else the stage field naming it."""
    for name in reversed(found.via):
        if name in pf.decls:
            return pf.decls[name].span
    return field_span(stage, found.path)


def processes(stage: StageValue) -> int:
    """Processes the stage's training job starts: one per GPU (one on a machine without GPUs)."""
    cluster = stage.cluster.spec if stage.cluster else {"kind": "local", "gpus_per_node": 0}
    nodes = stage.config.get("nodes", 1) if cluster["kind"] == "slurm" else 1
    return max(1, nodes * cluster.get("gpus_per_node", 0))


def sources(value: Any, path: tuple) -> Iterator[tuple[tuple, dict]]:
    """Pair/label/data sources of a field, with their paths (mixtures unfolded)."""
    if isinstance(value, dict) and value.get("kind") == "mix":
        for i, src in enumerate(value["sources"]):
            yield path + ("sources", i), src
    elif isinstance(value, dict):
        yield path, value


def reward_refs(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, dict]]:
    """Every declared reward reference inside a config (`{"ref": "reward", "spec": {...}}`)."""
    if isinstance(value, dict):
        if value.get("ref") == "reward":
            yield path, value
            return
        for key, item in value.items():
            yield from reward_refs(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from reward_refs(item, path + (i,))


def policy_bases(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, str, dict]]:
    """(path, name, video model spec) of every policy a config names: a model, or a stage's base model."""
    if isinstance(value, dict):
        if value.get("ref") == "model" and value["spec"].get("kind") == "video_diffusion":
            yield path, value["name"], value["spec"]
        elif value.get("ref") == "stage" and value.get("base_model"):
            yield path, value["name"], value["base_model"]
        elif "ref" not in value:
            for key, item in value.items():
                yield from policy_bases(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from policy_bases(item, path + (i,))
