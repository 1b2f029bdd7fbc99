"""Building blocks shared by every schema: the base class, references, units and words.

The evaluator turns recipe expressions into plain data (dicts, lists, numbers, strings) plus a few
marker types defined here (Word for a bare identifier, Quantity for a number with a unit, and the
reference dicts tagged by `ref`). Pydantic then validates that data against the schema of each kind;
its error locations are mapped back to recipe spans by the checker.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError


class Word(str):
    """A bare identifier that named nothing in scope: an enum word (`latent`) or a head name (`vq`)."""


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str
    dimension: str  # duration (seconds) | memory (GiB) | resolution (height) | count
    normalised: float

    def __str__(self) -> str:
        value = int(self.value) if float(self.value).is_integer() else self.value
        return f"{value}{self.unit}"


class Schema(BaseModel):
    """Base of every kind's schema: unknown fields are errors; docs come from field descriptions."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_default=True, defer_build=True)
    # Which fields a call's positional arguments fill, in order: `prompts("file")` fills `path`.
    positional: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    # Fields filled by `with NAME { ... }` blocks rather than `NAME = ...`.
    modifiers: ClassVar[tuple[str, ...]] = ()


def fail(kind: str, message: str, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, ctx)


# ---- units -----------------------------------------------------------------------------------------
class RecipeOnly(BeforeValidator):
    """A conversion of recipe syntax (a unit) that the plan, holding normalised values, does without:
    vpolang/jobconfig.py drops it when deriving job configs from these schemas."""


def _unit(dimension: str, example: str, allow_plain: bool):
    def convert(value: Any) -> Any:
        if isinstance(value, Quantity):
            if value.dimension != dimension:
                raise fail("vpo_unit", f"expected a {dimension} such as `{example}`, got `{value}`")
            return value.normalised
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value
        if allow_plain:
            return value
        raise fail("vpo_unit", f"a {dimension} needs a unit, e.g. `{example}`")
    return RecipeOnly(convert)


Seconds = Annotated[float, _unit("duration", "48h", allow_plain=False), Field(gt=0)]
Timeout = Annotated[float, _unit("duration", "30s", allow_plain=True), Field(gt=0)]  # plain numbers: seconds
GiB = Annotated[float, _unit("memory", "80GiB", allow_plain=False), Field(gt=0)]


MAX_COUNT = 10**15  # a backstop for every count; fields have tighter bounds of their own (le=...)


def _count(value: Any) -> Any:
    if isinstance(value, Quantity):
        if value.dimension != "count":
            raise fail("vpo_unit", f"expected a count, got `{value}`")
        value = value.normalised
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_COUNT:
        raise fail("vpo_range", f"a count of {float(value):.3g} is more than 1e15", field_prefix=True)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, float):
        raise fail("vpo_type", f"expected a whole number, got {value:g}")
    return value


Count = Annotated[int, BeforeValidator(_count)]
PositiveInt = Annotated[int, BeforeValidator(_count), Field(ge=1)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]

RESOLUTIONS: dict[str, tuple[int, int]] = {
    "16p": (16, 16), "24p": (24, 24), "32p": (32, 32), "64p": (64, 64),  # toy worlds
    "240p": (240, 416), "360p": (360, 640), "480p": (480, 832), "540p": (544, 960),
    "720p": (720, 1280), "1080p": (1088, 1920),
}


def _resolution(value: Any) -> Any:
    if isinstance(value, Quantity):
        if value.dimension != "resolution":
            raise fail("vpo_unit", f"expected a resolution such as `480p`, got `{value}`")
        key = f"{int(value.value)}p"
        if key not in RESOLUTIONS:
            raise fail("vpo_range", f"unknown resolution `{value}`; known: " + ", ".join(RESOLUTIONS))
        return list(RESOLUTIONS[key])
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return [_count(v) for v in value]
    raise fail("vpo_type", "a resolution is `480p` or `[height, width]`")


def _resolution_ok(value: list[int]) -> list[int]:
    if any(v < 8 or v % 8 for v in value):
        raise fail("vpo_range", f"height and width must be multiples of 8 and at least 8, got {value}")
    return value


Resolution = Annotated[list[int], BeforeValidator(_resolution), AfterValidator(_resolution_ok)]


# ---- paths -----------------------------------------------------------------------------------------
def _path_text(value: str) -> str:
    from ..safety import path_text_problem

    problem = path_text_problem(value)
    if problem:
        raise fail("vpo_path", problem, hint="write the file name without control characters; "
                   "a string cannot hold a newline or a NUL byte that a file name could use safely")
    return value


PathText = Annotated[str, AfterValidator(_path_text)]  # a file or folder name the runtime opens


def _url(value: str) -> str:
    from ..safety import url_problem

    problem = url_problem(value)
    if problem:
        raise fail("vpo_url", problem, hint="write an http:// or https:// URL with a host, e.g. "
                   "\"http://127.0.0.1:8000/score\"; keys go in the environment variable `api_key_env` names")
    return value


def _env_name(value: str) -> str:
    from ..safety import ENV_NAME, shown

    import re

    if not re.fullmatch(ENV_NAME, value) or len(value) > 128:
        raise fail("vpo_url", f"an environment variable name is letters, digits and `_`, got {shown(value)}")
    return value


def _plugin_entry(value: str) -> str:
    from ..safety import plugin_entry_problem

    problem = plugin_entry_problem(value)
    if problem:
        raise fail("vpo_plugin", problem, hint="e.g. \"mypkg.rewards:Sharpness\", or the name a package "
                   "registers under the `vpo.rewards` entry-point group")
    return value


PluginEntry = Annotated[str, AfterValidator(_plugin_entry)]  # never imported by the compiler
Url = Annotated[str, AfterValidator(_url)]  # a served reward's endpoint: only ever given to an HTTP client
EnvName = Annotated[str, AfterValidator(_env_name)]


# ---- references ------------------------------------------------------------------------------------
# The evaluator emits these dicts for names that denote declarations.
class ModelRef(Schema):
    ref: Literal["model"] = "model"
    name: str
    spec: dict[str, Any]


class StageRef(Schema):
    ref: Literal["stage"] = "stage"
    name: str  # the stage id: `sft`, `ipo.r1.tuned`
    stage_kind: str
    produces: Literal["policy", "reward_model", "metrics"]
    base_model: dict[str, Any] | None = None  # for policies: the architecture they descend from
    heads: list[str] = Field(default_factory=list)  # for reward models


class RewardRef(Schema):
    ref: Literal["reward"] = "reward"
    name: str  # as written in the recipe: `r.videoalign`, `rm`
    head: str | None = None  # `vq`, `overall`; None: the whole reward
    heads: list[str] = Field(default_factory=list)  # the reward's heads (empty: scalar)
    spec: dict[str, Any] | None = None  # a declared reward's spec
    stage: str | None = None  # or the reward_model stage that produces it


def _kind_of(value: Any) -> str:
    if isinstance(value, dict) and "ref" in value:
        if value["ref"] == "stage":
            return f"{value['stage_kind']} stage `{value['name']}`"
        return f"{value['ref']} `{value['name']}`"
    if isinstance(value, dict) and "kind" in value:
        return f"a `{value['kind']}` value"
    if isinstance(value, Word):
        return f"the word `{value}`"
    return f"`{value!r}`" if not isinstance(value, (list, dict)) else type(value).__name__


def _policy(value: Any) -> Any:
    """A policy: a diffusion model, or a stage whose output is a policy."""
    if isinstance(value, dict) and value.get("ref") == "model":
        if value["spec"].get("kind") != "video_diffusion":
            raise fail("vpo_ref", f"expected a video diffusion model or a training stage, got "
                       f"{value['spec'].get('kind')} model `{value['name']}`")
        return value
    if isinstance(value, dict) and value.get("ref") == "stage":
        if value["produces"] != "policy":
            raise fail("vpo_ref", f"expected a policy (a model or a training stage), got {_kind_of(value)}, "
                       f"which produces a {value['produces'].replace('_', ' ')}")
        return value
    raise fail("vpo_ref", f"expected a policy (a model or a training stage), got {_kind_of(value)}")


def _backbone(value: Any) -> Any:
    if isinstance(value, dict) and value.get("ref") == "model" and value["spec"].get("kind") == "vision_language":
        return value
    raise fail("vpo_ref", f"expected a vision-language model (e.g. models.qwen2_vl_2b), got {_kind_of(value)}")


Policy = Annotated[dict[str, Any], BeforeValidator(_policy)]
Backbone = Annotated[dict[str, Any], BeforeValidator(_backbone)]


def _reward(value: Any) -> Any:
    if isinstance(value, dict) and value.get("ref") == "reward":
        return value
    if isinstance(value, dict) and value.get("ref") == "stage" and value["produces"] == "reward_model":
        return {"ref": "reward", "name": value["name"], "head": None, "heads": value["heads"],
                "stage": value["name"]}
    raise fail("vpo_ref", f"expected a reward, got {_kind_of(value)}")


def _scalar(value: dict) -> dict:
    if value.get("head") is None and value.get("heads"):
        heads = value["heads"]
        raise fail("vpo_scalar", f"`{value['name']}` has several heads ({', '.join(heads)}); pick one, "
                   f"e.g. `{value['name']}.{heads[0]}`, or `{value['name']}.overall` for their sum")
    return value


AnyReward = Annotated[dict[str, Any], BeforeValidator(_reward)]
ScalarReward = Annotated[dict[str, Any], BeforeValidator(_reward), AfterValidator(_scalar)]


def word_or_object(*kinds: str):
    """Lets a bare word stand for an object of that kind with all defaults: `reverse` == `reverse()`."""
    def convert(value: Any) -> Any:
        if isinstance(value, str) and value in kinds:
            return {"kind": str(value)}
        return value
    return BeforeValidator(convert)


def schema_fields(model: type[Schema]) -> list[tuple[str, Any]]:
    """(name, FieldInfo) of the user-facing fields (the `kind` tag left out)."""
    return [(n, f) for n, f in model.model_fields.items() if n != "kind"]


def takes_words(annotation: Any) -> bool:
    """True when a field holds only enum words or names (Literal, str, or lists of them): there a bare
    identifier is a word, not a reference (`metric = temporal_flicker`, `dims = [vq, mq]`)."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin is Literal:
        return True
    if annotation is str:
        return True
    if origin is Annotated:
        return takes_words(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(takes_words(a) for a in args)
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return bool(args) and takes_words(args[0])
    return False
