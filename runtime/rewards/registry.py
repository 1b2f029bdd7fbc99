"""Building rewards from the plan's reward references and scoring reward expressions.

A reference is the dict the compiler emits: {"ref": "reward", "name", "head", "heads", "spec", "stage",
"input"}; `spec` is a declared reward's schema dump, or None when a reward_model stage produces it (then
`input` names the job input that holds the stage's saved model). Rewards are built once per spec (or
per saved model) and cached for the process. Expressions: {"kind": "sum", "terms": [{"weight", "reward"}]},
{"kind": "joint", "rewards": [...], "balance", "weights"}; gates: {"kind": "gate", "reward", "op",
"threshold"}.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from pydantic import TypeAdapter, ValidationError

from runtime.errors import JobError
from vpolang.schema.entities import RewardSpec, VisionLanguage

from .base import Reward, select_head

ResolveInput = Callable[[str], Path]
_CACHE: dict[str, Reward] = {}
_SPECS = TypeAdapter(RewardSpec)


def build_reward(ref: dict, resolve_input: ResolveInput | None = None, *, base_dir: Path | None = None,
                 device: str | torch.device | None = None) -> Reward:
    """The Reward a reference names, built once per spec. Relative `path`s are taken from `base_dir`
    (the recipe's folder); `resolve_input(slot)` gives a reward_model stage's artifact folder."""
    if ref.get("spec") is None:
        folder = _stage_folder(ref, resolve_input)
        key = json.dumps({"saved_model": str(folder)})
    else:
        folder, key = None, json.dumps({"spec": ref["spec"], "base": str(base_dir)}, sort_keys=True)
    if key not in _CACHE:
        _CACHE[key] = _stage_reward(ref, folder) if folder is not None else _spec_reward(ref, base_dir)
    reward = _CACHE[key]
    if device is not None and reward.needs.device == "gpu" and reward.device != torch.device(device):
        reward.to(device)
    return reward


def clear_cache() -> None:
    _CACHE.clear()


def reward_for(ref: dict, ctx=None) -> Reward:
    """build_reward with a job context's input resolver, recipe folder and device."""
    if ctx is None:
        return build_reward(ref)
    return build_reward(ref, ctx.input_path, base_dir=ctx.recipe_dir, device=ctx.device)


def score_reward(ref: dict, videos: torch.Tensor, prompts: list[str], ctx=None) -> torch.Tensor:
    """(B,) scores of one reference: its head, else a scalar reward's score or a multi-head's `overall`."""
    return select_head(reward_for(ref, ctx)(videos, list(prompts)), ref.get("head"), ref["name"])


def score_references(refs: list[dict], videos: torch.Tensor, prompts: list[str], ctx=None,
                     mode: str | None = None) -> list[torch.Tensor]:
    """(B,) scores per reference; each distinct reward runs once however many heads are asked of it.
    `mode` (serial | threads | grouped, see concurrent.py) is the plan's decision (a training job's
    `execution.reward_execution`); None runs them one after another."""
    from .concurrent import run_rewards

    rewards = [reward_for(ref, ctx) for ref in refs]
    distinct = {str(id(r)): r for r in rewards}
    scores = run_rewards(distinct, videos, list(prompts), mode=mode or "serial").scores
    return [select_head(scores[str(id(r))], ref.get("head"), ref["name"]) for r, ref in zip(rewards, refs)]


def score_expression(expr: dict, videos: torch.Tensor, prompts: list[str], ctx=None,
                     mode: str | None = None) -> dict[str, Any]:
    """`sum`: {"total": sum of weight * score, "terms": {label: scores}}; `joint`: {"terms": ...,
    "joint": [scores per reward, in order]} (the GRPO trainer gives each its own advantage)."""
    if expr["kind"] == "sum":
        refs = [t["reward"] for t in expr["terms"]]
        scored = score_references(refs, videos, prompts, ctx, mode)
        total = sum(t["weight"] * s for t, s in zip(expr["terms"], scored))
        return {"total": total, "terms": {label(r): s for r, s in zip(refs, scored)}}
    if expr["kind"] == "joint":
        scored = score_references(expr["rewards"], videos, prompts, ctx, mode)
        return {"terms": {label(r): s for r, s in zip(expr["rewards"], scored)}, "joint": scored}
    raise ValueError(f"unknown reward expression {expr['kind']!r}")


_OPS = {">=": torch.ge, ">": torch.gt, "<=": torch.le, "<": torch.lt}


def gate_mask(gate: dict, scores: torch.Tensor, prompts: list[str] | None = None, ctx=None) -> torch.Tensor:
    """True where a sample passes the gate. `gate_mask(gate, scores)` compares precomputed (B,) scores of
    the gate's reward; `gate_mask(gate, videos, prompts, ctx)` scores the videos first."""
    if prompts is not None:
        scores = score_reward(gate["reward"], scores, prompts, ctx)
    if scores.dim() != 1:
        raise ValueError(f"gate scores must be (B,), got {tuple(scores.shape)}; pass prompts to score videos")
    return _OPS[gate["op"]](scores, gate["threshold"])


def label(ref: dict) -> str:
    """How a reference is named in metrics: `r.videoalign.vq`, `shapes.alignment`."""
    return ref["name"] + (f".{ref['head']}" if ref.get("head") else "")


# ---- building ------------------------------------------------------------------------------------
def _stage_folder(ref: dict, resolve_input: ResolveInput | None) -> Path:
    slot = ref.get("input") or f"reward_model:{ref.get('stage')}"
    if resolve_input is None:
        raise JobError(f"reward `{ref['name']}` is produced by the reward_model stage `{ref.get('stage')}`; "
                       f"scoring it needs that stage's output (job input `{slot}`)")
    return Path(resolve_input(slot))


def _stage_reward(ref: dict, folder: Path) -> Reward:
    from .video_reward_model import load_reward_model

    return load_reward_model(folder, ref["name"], ref.get("heads") or None)


def _spec_reward(ref: dict, base_dir: Path | None) -> Reward:
    kind = ref["spec"]["kind"]
    if kind not in _BUILDERS:
        raise JobError(f"reward `{ref['name']}`: kind `{kind}` has no runtime implementation; "
                       f"known kinds: {', '.join(sorted(_BUILDERS))}")
    try:
        spec = _SPECS.validate_python(ref["spec"])  # typed: every default is the schema's
    except ValidationError as exc:
        raise JobError(f"reward `{ref['name']}`: its spec does not match the `{kind}` schema: "
                       f"{exc.errors(include_url=False)[0]['msg']}") from None
    return _BUILDERS[kind](spec, ref["name"], base_dir)


def _weights(path: str | None, reward: str, what: str, base_dir: Path | None, hint: str = "") -> Path:
    """The local folder of a reward's weights, or an error telling the user to set `path`."""
    if path is None:
        raise JobError(f"reward `{reward}` needs the weights of {what}, and its `path` is not set: set `path` "
                       f"in the recipe to a local folder in transformers format{hint}")
    folder = Path(path)
    if not folder.is_absolute() and base_dir is not None:
        folder = Path(base_dir) / folder
    if not folder.is_dir():
        raise JobError(f"reward `{reward}`: `path` {path} is not a folder (looked at {folder})")
    return folder


def _weight_free(spec, name: str, base_dir: Path | None) -> Reward:
    from .weight_free import WeightFreeReward

    return WeightFreeReward(spec.metric, spec.resize)


def _shapes(spec, name: str, base_dir: Path | None) -> Reward:
    from .shapes_world import ShapesWorldReward

    return ShapesWorldReward(spec.metric)


def _feature_consistency(spec, name: str, base_dir: Path | None) -> Reward:
    from .backbones import SHAPES, ShapesPatches, load_backbone
    from .feature_consistency import FeatureConsistencyReward

    if spec.backbone == SHAPES and spec.path is None:
        return FeatureConsistencyReward(spec.target, ShapesPatches())
    location = spec.path
    if location is None and Path(base_dir or ".", spec.backbone).joinpath("config.json").is_file():
        location = spec.backbone  # `backbone` itself names a local folder
    folder = _weights(location, name, f"its `{spec.backbone}` backbone", base_dir,
                      ' (a DINOv2 model), or backbone = "shapes" in the shapes world')
    return FeatureConsistencyReward(spec.target, load_backbone(str(folder)))


def _clip_score(spec, name: str, base_dir: Path | None) -> Reward:
    from .clip import load_clip_score

    return load_clip_score(_weights(spec.path, name, "a CLIP model", base_dir), spec.frames, spec.logit_scale,
                           spec.checkpoint)


def _aesthetic(spec, name: str, base_dir: Path | None) -> Reward:
    from .clip import AESTHETIC_HEAD, load_aesthetic

    folder = _weights(spec.path, name, "a CLIP model and its aesthetic head", base_dir,
                      f" holding the CLIP model and {AESTHETIC_HEAD}")
    return load_aesthetic(folder, spec.frames, spec.head)


def _vlm_judge(spec, name: str, base_dir: Path | None) -> Reward:
    from .vlm import check_family
    from .vlm_judge import VlmJudgeReward

    model = VisionLanguage.model_validate(spec.model["spec"])  # the judge's model, typed
    check_family(model.family, name)
    folder = _weights(model.path, name, f"its model `{spec.model['name']}`", base_dir,
                      f" (on the model: `model judge = {spec.model['name']} {{ path = \"...\" }}`)")
    return VlmJudgeReward(folder, spec.question, spec.frames, spec.pairwise, model.dtype, name=name)


def _video_reward_model(spec, name: str, base_dir: Path | None) -> Reward:
    from .video_reward_model import load_reward_model
    from .vlm import check_family

    backbone = VisionLanguage.model_validate(spec.model["spec"])
    check_family(backbone.family, name)
    folder = _weights(spec.path, name, "a trained video reward model", base_dir,
                      " saved by VideoRewardModel.save (a reward_model stage's output) or a released VideoAlign")
    from .released import released_reward_model

    released = released_reward_model(folder, spec.model_dump(), name, base_dir)
    if released is not None:
        return released
    return load_reward_model(folder, name, spec.heads, backbone.dtype)


# These take the spec's plain form (the typed spec's dump: every field, the schema's defaults).
def _remote(spec, name: str, base_dir: Path | None) -> Reward:
    from .served import RemoteReward

    return RemoteReward(spec.model_dump(), name)


def _served_judge(spec, name: str, base_dir: Path | None) -> Reward:
    from .served import ServedJudgeReward

    return ServedJudgeReward(spec.model_dump(), name)


def _plugin(spec, name: str, base_dir: Path | None) -> Reward:
    from .plugin import build_plugin

    return build_plugin(spec.model_dump(), name, base_dir)


_BUILDERS: dict[str, Callable[[Any, str, Path | None], Reward]] = {
    "weight_free": _weight_free, "shapes": _shapes, "feature_consistency": _feature_consistency,
    "clip_score": _clip_score, "aesthetic": _aesthetic, "vlm_judge": _vlm_judge,
    "video_reward_model": _video_reward_model, "remote": _remote, "served_judge": _served_judge,
    "plugin": _plugin}
