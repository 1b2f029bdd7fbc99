"""The typed configuration of every plan job, derived from the schemas (one definition per field).

A stage job's config is its stage schema (vpolang/schema/stages) as lowering leaves it: the same fields,
constraints, defaults and descriptions, plus what lowering adds (`model`: the resolved video_diffusion
spec its policy descends from) and with each `on_policy(...)` or `synthetic(...)` source replaced by the
input slot of the data job that produces it. The data jobs lowering creates (`generate`, `judge`,
`synthesize`) take their fields from the `on_policy` and `synthetic` schemas and from `StageBase`.

Nothing here lists a stage's fields: a field added to a stage schema appears in its job config with no
edit. `JOBS` is the one table of job kinds; the plan, the lowering, the estimator and the runtime's
registry derive their lists from it. The compiler side of the contract, importable without torch."""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo

from .schema.base import RecipeOnly, Schema
from .schema.entities import OnPolicy, Synthetic, VideoDiffusion
from .schema.stages import PRODUCES, STAGES
from .schema.stages.common import StageBase


JobConfig = Schema  # every job's config is a schema: unknown fields are errors, every default is the schema's


# ---- deriving a plan-side type from a recipe-side one -----------------------------------------------
_derived: dict[type, type] = {}


def _plan_annotation(tp: Any) -> Any:
    """`tp` with every lowered schema replaced and every recipe-only conversion (units) dropped: the
    plan holds normalised values (`time_limit` in seconds, not `48h`)."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        meta = [m for m in meta if not isinstance(m, RecipeOnly)]
        new = _plan_annotation(base)
        return Annotated[(new, *meta)] if meta else new
    if origin in (Union, types.UnionType):
        return Union[tuple(_plan_annotation(a) for a in typing.get_args(tp))]
    if origin is list:
        return list[_plan_annotation(typing.get_args(tp)[0])]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _plan_model(tp)
    return tp


def _plan_info(info: FieldInfo) -> FieldInfo:
    new = FieldInfo.merge_field_infos(info)
    new.metadata = [m for m in info.metadata if not isinstance(m, RecipeOnly)]
    return new


def _plan_model(model: type[BaseModel]) -> type[BaseModel]:
    """The model itself when lowering leaves it as is, else a subclass with the changed fields."""
    if model in LOWERED:
        return LOWERED[model]
    if model not in _derived:
        _derived[model] = model  # a recursive schema refers to itself as it is
        changed = {}
        for name, info in model.model_fields.items():
            annotation = _plan_annotation(info.annotation)
            if annotation != info.annotation or any(isinstance(m, RecipeOnly) for m in info.metadata):
                changed[name] = (annotation, _plan_info(info))
        if changed:
            _derived[model] = create_model(model.__name__, __base__=model, __module__=__name__, **changed)
    return _derived[model]


# ---- sources as a stage sees them once lowered ------------------------------------------------------
def _field(schema: type[BaseModel], name: str) -> tuple[Any, FieldInfo]:
    """(annotation, FieldInfo) of `schema.name`, for create_model: the field's one definition, reused."""
    info = schema.model_fields[name]
    return _plan_annotation(info.annotation), _plan_info(info)


def _fields(schema: type[BaseModel], *names: str) -> dict[str, tuple[Any, FieldInfo]]:
    return {name: _field(schema, name) for name in names}


_SLOT = (str, Field(description="the input slot (job.inputs) holding the data job's output"))

LoweredOnPolicy = create_model(
    "LoweredOnPolicy", __base__=JobConfig, __doc__="`on_policy(...)` once lowered: the pairs (or, for rwr, the "
    "videos) its `generate`/`judge` jobs produce, read from input slot `input`.",
    kind=(Literal["on_policy"], "on_policy"), input=_SLOT, **_fields(OnPolicy, "n", "labels"))
LoweredSynthetic = create_model(
    "LoweredSynthetic", __base__=JobConfig, __doc__="`synthetic(...)` once lowered: the pairs its `synthesize` "
    "job produces, read from input slot `input`.", kind=(Literal["synthetic"], "synthetic"), input=_SLOT)

# What lowering replaces, wherever it appears in a stage's fields.
LOWERED: dict[type, type] = {OnPolicy: LoweredOnPolicy, Synthetic: LoweredSynthetic}



def _stage_config(kind: str, schema: type[Schema]) -> type[Schema]:
    """A stage schema as lowering leaves it (see the module docstring): a subclass, so its fields,
    defaults and cross-field rules are the schema's own."""
    fields = {name: (_plan_annotation(info.annotation), _plan_info(info)) for name, info in schema.model_fields.items()
              if _plan_annotation(info.annotation) != info.annotation or any(isinstance(m, RecipeOnly)
                                                                           for m in info.metadata)}
    if "policy" in schema.model_fields:  # lower.py: the architecture the policy descends from
        fields["model"] = (VideoDiffusion, Field(description="the video_diffusion spec the policy descends from"))
    name = "".join(part.title() for part in kind.split("_")) + "Config"
    return create_model(name, __base__=schema, __module__=__name__, __doc__=schema.__doc__, **fields)


# An `on_policy(...)` source splits into a judge job (these fields: what becomes of the candidates) and
# a generate job (every other field: how they are sampled, so a new sampling field reaches it unlisted).
JUDGE_FIELDS = ("judges", "pick", "margin", "swap_check", "labels")
GENERATE_FIELDS = tuple(name for name in OnPolicy.model_fields if name not in ("kind", *JUDGE_FIELDS))

GenerateConfig = create_model(
    "GenerateConfig", __base__=JobConfig, __module__=__name__,
    __doc__="Sample `n` candidates per prompt from a policy (an `on_policy(...)` source, lowered).",
    kind=(Literal["generate"], "generate"), **_fields(OnPolicy, *GENERATE_FIELDS),
    **_fields(StageBase, "seed", "resolution", "frames"),
    model=(VideoDiffusion | None, Field(None, description="the video_diffusion spec the policy descends from")))
JudgeConfig = create_model(
    "JudgeConfig", __base__=JobConfig, __module__=__name__,
    __doc__="Score a `generate` job's candidates and build pairs (an `on_policy(...)` source, lowered).",
    kind=(Literal["judge"], "judge"), **_fields(OnPolicy, *JUDGE_FIELDS))
SynthesizeConfig = create_model(
    "SynthesizeConfig", __base__=JobConfig, __module__=__name__,
    __doc__="Pairs of real videos against temporal corruptions of them (a `synthetic(...)` source, lowered).",
    kind=(Literal["synthesize"], "synthesize"), **_fields(Synthetic, "videos", "negatives", "seed"),
    **_fields(StageBase, "resolution", "frames"))


@dataclass(frozen=True)
class JobKindInfo:
    config: type[Schema]
    outputs: tuple[str, ...]  # artifact names, in order
    training: bool  # carries an execution block
    data_job: bool  # lowered from a source (on_policy, synthetic), not declared as a stage


def _stage_outputs(kind: str) -> tuple[str, ...]:
    return ("metrics", "samples") if PRODUCES[kind] == "metrics" else (PRODUCES[kind],)


# The one table of job kinds: every stage kind (from the stage registry) and the data jobs.
JOBS: dict[str, JobKindInfo] = {
    **{kind: JobKindInfo(_stage_config(kind, schema), _stage_outputs(kind),
                         training=PRODUCES[kind] in ("policy", "reward_model"), data_job=False)
       for kind, schema in STAGES.items()},
    "generate": JobKindInfo(GenerateConfig, ("videos",), training=False, data_job=True),
    "judge": JobKindInfo(JudgeConfig, ("pairs",), training=False, data_job=True),
    "synthesize": JobKindInfo(SynthesizeConfig, ("pairs",), training=False, data_job=True),
}
JOB_KINDS: tuple[str, ...] = tuple(JOBS)
TRAINING_KINDS: tuple[str, ...] = tuple(k for k, info in JOBS.items() if info.training)
CONFIGS: dict[str, type[Schema]] = {kind: info.config for kind, info in JOBS.items()}

AnyJobConfig = Annotated[Union[tuple(CONFIGS.values())], Field(discriminator="kind")]
