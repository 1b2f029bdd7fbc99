"""Checked recipe -> Plan: one job per stage plus the data jobs its sources need, in dependency order.

- `on_policy(...)` becomes a `generate` job (sample candidates from its policy) and a `judge` job
  (score them, build pairs) ahead of the stage: `pref.pairs.on_policy.generate`, `....judge`.
- `synthetic(...)` becomes a `synthesize` job: `pref.pairs.synthetic`.
- `online(...)` stays inside its DPO trainer.
References to other stages become input artifacts; every default is filled in, so a job runs from its
plan entry alone.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from .check import CheckedRecipe
from .safety import recipe_name
from .jobconfig import GENERATE_FIELDS, JOBS, JUDGE_FIELDS, LoweredOnPolicy, LoweredSynthetic
from .plan import (SINGLE_PROCESS_KINDS, ArtifactRef, Job, Placement, Plan, PlanSpan, RecipeInfo, assign_hashes,
                   topological_order)
from .values import StageValue

OUTPUTS = {kind: list(info.outputs) for kind, info in JOBS.items()}
DPO_BETA_DEFAULT = {"epsilon": 5000.0, "velocity": 500.0}


def lower(recipe: CheckedRecipe) -> Plan:
    jobs: list[Job] = []
    for stage in recipe.stages:
        jobs.extend(_stage_jobs(stage))
    ordered = topological_order(jobs)
    assign_hashes(ordered)  # again once estimation has added the execution blocks (planning.py)
    stem = recipe.source.path.stem if recipe.source.path else Path(recipe.source.name).stem
    info = RecipeInfo(path=recipe.source.name, sha256=recipe.source.sha256, name=recipe_name(stem))
    return Plan(recipe=info, params=dict(recipe.params), jobs=ordered, budget_usd=recipe.budget_usd)


class _Inputs:
    """Collects a job's input artifacts under stable slot names."""

    def __init__(self):
        self.slots: dict[str, ArtifactRef] = {}

    def add(self, slot: str, job: str, name: str) -> str:
        self.slots[slot] = ArtifactRef(job=job, name=name)
        return slot


def _stage_jobs(stage: StageValue) -> list[Job]:
    config = copy.deepcopy(stage.config)
    inputs = _Inputs()
    data_jobs: list[Job] = []
    _fill_model_defaults(config, stage)
    for field in ("pairs", "labels", "data"):
        value = config.get(field)
        if isinstance(value, dict):
            config[field] = _lower_source(stage, config, field, value, inputs, data_jobs, {})
    config = _link_refs(config, inputs)
    # a one-process trainer (evaluate) gets the one GPU it uses, not the cluster's node (E0330: `nodes`)
    placement = _placement(stage, 1, max_gpus=1) if stage.kind in SINGLE_PROCESS_KINDS else \
        _placement(stage, config.get("nodes", 1))
    job = Job(id=stage.id, kind=stage.kind, stage=stage.id, inputs=inputs.slots,
              depends_on=sorted({r.job for r in inputs.slots.values()}), outputs=OUTPUTS[stage.kind],
              placement=placement, config=config, seed=config.get("seed", 0), span=_span(stage))
    return data_jobs + [job]


def _fill_model_defaults(config: dict, stage: StageValue) -> None:
    model = stage.base_model
    if model is None:
        return
    if config.get("resolution") is None and "resolution" in config:
        config["resolution"] = list(model["resolution"])
    if config.get("frames") is None and "frames" in config:
        config["frames"] = model["frames"]
    if stage.kind == "dpo" and config.get("beta") is None:
        config["beta"] = {"kind": "constant", "value": DPO_BETA_DEFAULT[model["prediction"]]}
    if "sample_steps" in config and config.get("sample_steps") is None:
        config["sample_steps"] = model["sample_steps"]
    validate = config.get("validate")
    if validate:
        if validate.get("sample_steps") is None:
            validate["sample_steps"] = model["sample_steps"]
        if validate.get("monitor") is None:
            validate["monitor"] = copy.deepcopy(validate["metrics"][0])
    _fill_guidance_defaults(config, model)
    if stage.kind == "grpo" and config.get("noise_level") is None:
        config["noise_level"] = {"flow_grpo": 0.7, "dance": 0.3, "cps": 0.8, "ode": 0.0}[config["noise"]]
    config["model"] = model


def _lower_source(stage: StageValue, cfg: dict, field: str, value: dict, inputs: _Inputs, data_jobs: list[Job],
                  seen: dict[str, int]) -> dict:
    if value.get("kind") == "mix":
        value["sources"] = [_lower_leaf(stage, cfg, field, src, inputs, data_jobs, seen) for src in value["sources"]]
        return value
    return _lower_leaf(stage, cfg, field, value, inputs, data_jobs, seen)


def _lower_leaf(stage: StageValue, cfg: dict, field: str, src: dict, inputs: _Inputs, data_jobs: list[Job],
                seen: dict[str, int]) -> dict:
    """`cfg` is the stage's config with model defaults filled (resolution, frames)."""
    """Ids name the source: `pref.pairs.on_policy`; a second source of the same kind gets `_2`."""
    kind = src.get("kind")
    seen[kind] = seen.get(kind, 0) + 1
    where = f"{field}.{kind}" + (f"_{seen[kind]}" if seen[kind] > 1 else "")
    # judging and synthesizing run in one process (on one GPU of the stage's cluster); generation is
    # data parallel over the stage's GPUs
    placement = _placement(stage, 1, max_gpus=1)
    if kind == "on_policy":
        gen_inputs, judge_inputs = _Inputs(), _Inputs()
        gen_cfg = _link_refs({**{name: src[name] for name in GENERATE_FIELDS}, "seed": cfg["seed"],
                              "resolution": cfg["resolution"], "frames": cfg["frames"],
                              "model": _base_of(src["policy"])}, gen_inputs)
        _fill_sampling_defaults(gen_cfg)
        gen = Job(id=f"{stage.id}.{where}.generate", kind="generate", stage=stage.id, inputs=gen_inputs.slots,
                  depends_on=sorted({r.job for r in gen_inputs.slots.values()}), outputs=OUTPUTS["generate"],
                  placement=_placement(stage, stage.config.get("nodes", 1)), config=gen_cfg,
                  seed=stage.config.get("seed", 0), span=_span(stage))
        if field == "data":  # RWR weighs the samples by its own reward: the candidates need no judging
            data_jobs.append(gen)
            return LoweredOnPolicy(input=inputs.add(where, gen.id, "videos"), n=src["n"],
                                   labels=src["labels"]).model_dump()
        judge_inputs.add("videos", gen.id, "videos")
        judge_cfg = _link_refs({name: src[name] for name in JUDGE_FIELDS}, judge_inputs)
        judge = Job(id=f"{stage.id}.{where}.judge", kind="judge", stage=stage.id, inputs=judge_inputs.slots,
                    depends_on=sorted({r.job for r in judge_inputs.slots.values()}), outputs=OUTPUTS["judge"],
                    placement=placement, config=judge_cfg, seed=stage.config.get("seed", 0), span=_span(stage))
        data_jobs.extend([gen, judge])
        slot = inputs.add(where, judge.id, "pairs")
        return LoweredOnPolicy(input=slot, n=src["n"], labels=src["labels"]).model_dump()
    if kind == "synthetic":
        job_cfg = {"videos": src["videos"], "negatives": src["negatives"], "seed": src["seed"],
                   "resolution": cfg.get("resolution"), "frames": cfg.get("frames")}
        job = Job(id=f"{stage.id}.{where}", kind="synthesize", stage=stage.id, outputs=OUTPUTS["synthesize"],
                  placement=placement, config=job_cfg, seed=src["seed"], span=_span(stage))
        data_jobs.append(job)
        slot = inputs.add(where, job.id, "pairs")
        return LoweredSynthetic(input=slot).model_dump()
    if kind == "online":  # candidates come from the stage's own policy
        _fill_guidance_defaults(src, stage.base_model)
    return src


def _fill_guidance_defaults(cfg: dict, model: dict | None) -> None:
    """Unset `guidance_scale` / `negative_prompt` of a job that samples take the model's; fields the
    job's kind lacks stay absent (grpo has its own `guidance` scale, default 1)."""
    for name in ("guidance_scale", "negative_prompt"):
        if name in cfg and cfg[name] is None and model:
            cfg[name] = model[name]


def _fill_sampling_defaults(cfg: dict) -> None:
    model = cfg.get("model") or {}
    _fill_guidance_defaults(cfg, model)
    if cfg.get("sample_steps") is None and model:
        cfg["sample_steps"] = model["sample_steps"]
    if cfg.get("resolution") is None and model:
        cfg["resolution"] = list(model["resolution"])
    if cfg.get("frames") is None and model:
        cfg["frames"] = model["frames"]


def _base_of(policy: dict) -> dict | None:
    return policy["spec"] if policy.get("ref") == "model" else policy.get("base_model")


def _link_refs(value: Any, inputs: _Inputs) -> Any:
    """Stage references become input slots: {"ref": "stage", ..., "input": "policy"}."""
    if isinstance(value, list):
        return [_link_refs(v, inputs) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("ref") == "stage":
        artifact = "reward_model" if value["produces"] == "reward_model" else value["produces"]
        slot = f"{artifact}:{value['name']}"
        inputs.add(slot, value["name"], artifact)
        return {**value, "input": slot}
    if value.get("ref") == "reward" and value.get("stage"):
        slot = f"reward_model:{value['stage']}"
        inputs.add(slot, value["stage"], "reward_model")
        return {**value, "input": slot}
    return {k: _link_refs(v, inputs) for k, v in value.items()}


def _placement(stage: StageValue, nodes: int, max_gpus: int | None = None) -> Placement:
    cluster = stage.cluster.spec if stage.cluster else {"kind": "local", "gpu": "cpu", "gpus_per_node": 0}
    if max_gpus is not None:
        cluster = {**cluster, "gpus_per_node": min(cluster.get("gpus_per_node", 0), max_gpus)}
    time_limit = stage.config.get("time_limit") or cluster.get("time_limit")
    if cluster["kind"] == "slurm":
        gpn = cluster["gpus_per_node"]
        mem = cluster.get("mem_per_gpu")
        return Placement(executor="slurm", cluster=stage.cluster.name, partition=cluster.get("partition"),
                         account=cluster.get("account"), gpu=cluster["gpu"], nodes=nodes, gpus_per_node=gpn,
                         cpus_per_task=cluster.get("cpus_per_gpu"), mem_gib=mem * gpn if mem else None,
                         time_limit_s=int(time_limit) if time_limit else None,
                         slurm_extra=dict(cluster.get("extra", {})),
                         usd_per_gpu_hour=cluster.get("usd_per_gpu_hour"),
                         interconnect_gb_s=cluster.get("interconnect_gb_s"), track=list(cluster.get("track", [])))
    return Placement(executor="local", cluster=stage.cluster.name if stage.cluster else None,
                     gpu=cluster.get("gpu", "cpu"), nodes=1, gpus_per_node=cluster.get("gpus_per_node", 0),
                     time_limit_s=int(time_limit) if time_limit else None,
                     usd_per_gpu_hour=cluster.get("usd_per_gpu_hour"),
                     interconnect_gb_s=cluster.get("interconnect_gb_s"), track=list(cluster.get("track", [])))



def _span(stage: StageValue) -> PlanSpan:
    s = stage.span
    return PlanSpan(file=s.file, line=s.line, col=s.col, end_line=s.end_line, end_col=s.end_col)
