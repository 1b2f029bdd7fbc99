"""The plan's side of the estimates: a lowered Job (kind, config, placement) -> workload, model, cluster
-> the plan's Estimate record. Dataset sizes are counted from local files at plan time when they
exist (from the data preflight's one bounded reading of them); otherwise a stated default is assumed
and listed in `JobEstimate.assumed`."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from pydantic import BaseModel, Field, TypeAdapter

from vpolang.datacheck import FILE_KINDS, scan_source
from vpolang.jobconfig import JOB_KINDS
from vpolang.plan import Estimate, ExecutionBlock
from vpolang.schema.entities import RewardSpec

from . import workload as wl
from .arch import VISION_BACKBONES, Clip, VideoDiT, VisionLanguage
from .batch import BatchError, BatchPlan
from .estimate import Cluster
from .estimate import estimate_job as estimate_workload
from .execution import execution_block, memory_zero_stage, on_gpu, optimizer_for
from .hardware import UnknownGpu, lookup_gpu

DEFAULT_SIZES = {"prompts": 1000, "videos": 1000, "pairs": 10000, "labels": 10000}
JUDGED_VIDEOS = DEFAULT_SIZES["prompts"] * 4  # a judge job cannot see how many videos its input holds
BPGO_PRIOR_SAMPLES = 4  # runtime/trainers/grpo.py samples the prior policy 4 times per new prompt
UNKNOWN_BACKBONE = VisionLanguage(params=2_200_000_000, layers=28, hidden=1536)  # qwen2-vl-2b-sized
REWARDS = TypeAdapter(RewardSpec)


class PlacementError(BatchError):
    """A placement the planner cannot estimate (an unknown GPU)."""


class JobEstimate(Estimate):
    """The plan's Estimate plus what the planner had to assume (dataset sizes it could not count)."""

    assumed: list[str] = Field(default_factory=list)
    execution: ExecutionBlock | None = None  # training jobs: the schedule these numbers are of

    @property
    def fits(self) -> bool:
        return self.capacity_gib is None or self.peak_memory_gib <= self.capacity_gib


def estimate_job(job, recipe_dir: Path, usd_override: float | None) -> JobEstimate:
    """The plan's estimate of one job; raises BatchError when its batch does not split over its GPUs."""
    assumed: list[str] = []
    work, arch, cluster = describe(job, recipe_dir, usd_override, assumed)
    est = estimate_workload(work, arch, cluster, with_fixes=False)
    block = None
    if est.micro_batch is not None:
        layout = BatchPlan(est.micro_batch * est.grad_accum, est.micro_batch, est.grad_accum)
        block = execution_block(job.kind, job.config, job.placement, layout, est.checkpointing)
    return JobEstimate(flops=est.flops, step_time_s=est.step_time_s, hours=est.hours, gpu_hours=est.gpu_hours,
                       cost_usd=est.cost_usd, peak_memory_gib=est.peak_memory_gib, capacity_gib=est.capacity_gib,
                       breakdown=est.breakdown, assumed=assumed, execution=block)


def fixes(job, recipe_dir: Path) -> list[str]:
    """Changes that would make an over-memory job fit, each with its estimated peak, hours and cost."""
    work, arch, cluster = describe(job, recipe_dir, job.placement.usd_per_gpu_hour, [])
    return [str(fix) for fix in estimate_workload(work, arch, cluster).fixes]


def fix_hint(job, recipe_dir: Path) -> str:
    """E0302's hint: the changes that would make the job fit, or what the overflowing part needs."""
    from .fixes import no_fit_hint

    work, arch, cluster = describe(job, recipe_dir, job.placement.usd_per_gpu_hour, [])
    est = estimate_workload(work, arch, cluster)
    if est.fixes:
        return "would fit: " + "; ".join(str(fix) for fix in est.fixes)
    return no_fit_hint(est.memory_gib, est.capacity_gib, arch, cluster)


def describe(job, recipe_dir: Path, usd_override: float | None, assumed: list[str]):
    """(workload, transformer or None, cluster) of a plan job."""
    p = job.placement
    try:
        gpu = lookup_gpu(p.gpu)
    except UnknownGpu as exc:
        raise PlacementError(str(exc)) from None
    cfg = job.config
    _, zero = optimizer_for(getattr(cfg, "zero_stage", None), p.world_size, on_gpu(p))
    cluster = Cluster(gpu, p.nodes, p.gpus_per_node, memory_zero_stage(zero), usd_override,
                      sequence_parallel=getattr(cfg, "sequence_parallel", 1), interconnect_gb_s=p.interconnect_gb_s)
    model = getattr(cfg, "model", None)  # the video_diffusion spec of jobs that sample or train a policy
    arch = VideoDiT.from_spec(model) if model is not None else None
    sizes = Sizes(recipe_dir, assumed)
    work = BUILDERS[job.kind](cfg, arch, sizes)
    if "validate" in type(cfg).model_fields and cfg.validate is not None:  # (else: BaseModel.validate)
        work = dataclasses.replace(work, validation=_validation(cfg, work.steps, sizes))
    return work, arch, cluster


def _validation(cfg, steps: int, sizes: Sizes) -> wl.Work:
    """`with validate`: one validation every `every` steps and one after the last step."""
    v = cfg.validate
    validations = steps // v.every + (1 if steps % v.every else 0)
    return wl.validation_work(sizes.of(v.prompts), validations, v.sample_steps,
                              scorers(v.metrics, cfg.frames, sizes.assumed))


# ---- dataset sizes -------------------------------------------------------------------------------------
class Sizes:
    """Counts items of a dataset spec (a typed source of a job config), noting every default it has to assume."""

    def __init__(self, base: Path, assumed: list[str]):
        self.base, self.assumed = base, assumed

    def of(self, spec: BaseModel | None) -> int:
        if spec is None:
            return 0
        kind, path = spec.kind, getattr(spec, "path", None)
        if kind in ("shapes_prompts", "shapes_videos"):
            return int(spec.n)
        if kind == "mix":
            return sum(self.of(s) for s in spec.sources)
        if kind == "online":
            return self.of(spec.prompts)
        counted = scan_source(spec.model_dump(), self.base).count if kind in FILE_KINDS and path else None
        if counted is not None:
            return counted
        default = DEFAULT_SIZES.get(kind, DEFAULT_SIZES["pairs"])
        where = f" {path}" if path else f" from `{getattr(spec, 'input', kind)}`"
        self.assumed.append(f"{kind}{where}: {default} items assumed (not countable at plan time)")
        return default


def _epoch_steps(cfg, items: int) -> int:
    return max(1, math.ceil(cfg.epochs * items / cfg.batch))


def _steps(cfg, items: int) -> int:
    return cfg.steps or _epoch_steps(cfg, items)


# ---- rewards, judges and metrics -> scorers ---------------------------------------------------------------
def scorers(expr, clip_frames: int, assumed: list[str]) -> tuple[wl.Scorer, ...]:
    """Every model-backed reward inside a reward expression, gate, list or judge list, once per name."""
    found: dict[str, wl.Scorer] = {}
    _collect(expr, clip_frames, assumed, found)
    return tuple(found.values())


def _collect(node, clip_frames: int, assumed: list[str], found: dict) -> None:
    if isinstance(node, BaseModel):  # a typed reward expression, gate or modifier: walk its fields
        node = node.model_dump()
    if isinstance(node, list):
        for item in node:
            _collect(item, clip_frames, assumed, found)
    elif isinstance(node, dict) and node.get("ref") == "reward":
        scorer = _scorer(node, clip_frames, assumed)
        if scorer and scorer.name not in found:
            found[scorer.name] = scorer
    elif isinstance(node, dict):
        for key in ("reward", "rewards", "terms", "phases", "judges"):
            _collect(node.get(key), clip_frames, assumed, found)


def _scorer(ref: dict, clip_frames: int, assumed: list[str]) -> wl.Scorer | None:
    """The scorer of a reward reference (a dict: `{"ref": "reward", "name", "spec" | "stage", ...}`)."""
    name = ref["name"]
    if ref.get("spec") is None:  # the output of a reward_model stage: its backbone is not in this job's config
        assumed.append(f"reward `{name}` from stage `{ref.get('stage')}`: a 2.2B backbone assumed")
        return wl.Scorer(name, UNKNOWN_BACKBONE)
    spec = REWARDS.validate_python(ref["spec"])  # typed: its defaults are the schema's
    if spec.kind in ("video_reward_model", "vlm_judge"):
        return wl.Scorer(name, VisionLanguage.from_spec(spec.model["spec"]), spec.frames)
    if spec.kind in ("clip_score", "aesthetic"):
        return wl.Scorer(name, VISION_BACKBONES["clip-vit-l14"], spec.frames)
    if spec.kind == "feature_consistency":
        return wl.Scorer(name, VISION_BACKBONES.get(spec.backbone, VISION_BACKBONES["dinov2-small"]), clip_frames)
    return None  # weight-free and shapes-world rewards run on the CPU from pixels


# ---- one builder per job kind ------------------------------------------------------------------------------
def _clip(cfg) -> Clip:
    return Clip.of(cfg.frames, cfg.resolution)


def _train_fields(cfg, items: int) -> dict:
    return {"clip": _clip(cfg), "batch": cfg.batch, "steps": _steps(cfg, items), "dataset": items,
            "lora_rank": cfg.lora_rank, "checkpointing": cfg.gradient_checkpointing,
            "micro_batch": cfg.micro_batch, "compiled": cfg.compile}


def _sft(cfg, arch, sizes: Sizes):
    items = sizes.of(cfg.data)
    weight = scorers(cfg.weight, cfg.frames, sizes.assumed)
    return wl.Sft(**_train_fields(cfg, items), scorers=weight)


def _rwr(cfg, arch, sizes: Sizes):
    items = sizes.of(cfg.data)
    return wl.Rwr(**_train_fields(cfg, items), scorers=scorers(cfg.reward, cfg.frames, sizes.assumed))


def _kto(cfg, arch, sizes: Sizes):
    return wl.Kto(**_train_fields(cfg, sizes.of(cfg.labels)), nll_real=cfg.nll_real > 0)


def _dpo(cfg, arch: VideoDiT, sizes: Sizes):
    pairs = cfg.pairs
    online = None
    if pairs.kind == "online":
        steps = pairs.sample_steps or cfg.sample_steps or arch.sample_steps
        online = wl.OnlinePairs(pairs.n, steps, scorers(pairs.judges, cfg.frames, sizes.assumed),
                                guidance=pairs.guidance_scale)
    return wl.Dpo(**_train_fields(cfg, sizes.of(pairs)), backward=cfg.backward, nll_real=cfg.nll_real > 0,
                  online=online, refresh=cfg.reference.kind == "refresh")


def _grpo(cfg, arch: VideoDiT, sizes: Sizes):
    frames = cfg.frames
    rewards = scorers([cfg.reward, cfg.gate, cfg.self_paced], frames, sizes.assumed)
    if cfg.vipo is not None:
        backbone = cfg.vipo.backbone
        rewards += (wl.Scorer(backbone, VISION_BACKBONES.get(backbone, VISION_BACKBONES["dinov2-small"]), frames),)
    if cfg.reward_as == "win_rate":  # Pref-GRPO: a pairwise judge reads each video in its G-1 pairs, both orders
        reads = 2.0 * (cfg.group_size - 1)
        judges = {r["name"] for _, r in _reward_refs(cfg.reward.model_dump()) if (r.get("spec") or {}).get("pairwise")}
        rewards = tuple(wl.Scorer(s.name, s.model, s.frames, reads) if s.name in judges else s for s in rewards)
    prior_policy = cfg.bpgo is not None and cfg.bpgo.prior != "running_mean"
    prompts = sizes.of(cfg.prompts)
    fields = _train_fields(cfg, prompts)
    fields["dataset"] = 0  # prompts are encoded as they come
    sample_steps = cfg.sample_steps or arch.sample_steps
    return wl.Grpo(**fields, group_size=cfg.group_size, sample_steps=sample_steps, train_fraction=cfg.train_fraction,
                   kl=cfg.kl, guidance=cfg.guidance, updates_per_batch=cfg.updates_per_batch, rewards=rewards,
                   window=cfg.window.size if cfg.window is not None else 0, nft=cfg.objective == "nft",
                   prefix_steps=_shared_prefix_steps(cfg, sample_steps, fields["steps"]),
                   prior_samples=BPGO_PRIOR_SAMPLES if prior_policy else 0, prompt_pool=prompts)


def _shared_prefix_steps(cfg, sample_steps: int, steps: int) -> float:
    """The mean window start over the stage's steps (the runtime's `window.window_start`: slide from 0 by
    `stride` every `shift_every` steps up to T - 1 - size; random uniform on [0, T - 1 - size]), the
    ODE steps a group shares under `shared_noise`; 0 without either. `cfg`: a typed grpo config."""
    w = cfg.window
    if w is None or not cfg.shared_noise:
        return 0.0
    last = max(0, sample_steps - 1 - w.size)
    if w.schedule == "random":
        return last / 2
    total, done, position = 0.0, 0, 0
    while done < steps:  # each position holds for shift_every steps; the last one for the rest
        start = min(w.stride * position, last)
        held = steps - done if start == last else min(w.shift_every, steps - done)
        total, done, position = total + start * held, done + held, position + 1
    return total / max(1, steps)


def _reward_refs(node):
    """Every reward reference inside a reward expression."""
    if isinstance(node, list):
        for item in node:
            yield from _reward_refs(item)
    elif isinstance(node, dict) and node.get("ref") == "reward":
        yield None, node
    elif isinstance(node, dict):
        for key in ("reward", "rewards", "terms"):
            yield from _reward_refs(node.get(key))


def _reward_model(cfg, arch, sizes: Sizes):
    pairs, labels = sizes.of(cfg.pairs), sizes.of(cfg.labels)
    items = pairs + labels
    return wl.RewardModel(model=VisionLanguage.from_spec(cfg.backbone["spec"]), frames=cfg.frames,
                          batch=cfg.batch, steps=_epoch_steps(cfg, items), videos_per_item=(2 * pairs + labels) / items,
                          lora_rank=cfg.lora_rank, micro_batch=cfg.micro_batch)


def _generate(cfg, arch: VideoDiT, sizes: Sizes):
    return wl.Generate(videos=sizes.of(cfg.prompts) * cfg.n, clip=_clip(cfg), per_prompt=cfg.n,
                       sample_steps=cfg.sample_steps or arch.sample_steps, guidance=cfg.guidance_scale)


def _evaluate(cfg, arch: VideoDiT, sizes: Sizes):
    policies = 1 + len(cfg.against)
    videos = sizes.of(cfg.prompts) * cfg.samples_per_prompt * policies
    return wl.Evaluate(videos=videos, clip=_clip(cfg), per_prompt=cfg.samples_per_prompt,
                       sample_steps=cfg.sample_steps or arch.sample_steps,
                       scorers=scorers(cfg.metrics, cfg.frames, sizes.assumed), guidance=cfg.guidance_scale)


def _judge(cfg, arch, sizes: Sizes):
    sizes.assumed.append(f"judge: {JUDGED_VIDEOS} videos assumed (the count of its input is not known at plan time)")
    judges = scorers(cfg.judges, 8, sizes.assumed)
    if cfg.swap_check:  # pairwise verdicts are asked both ways
        judges = tuple(wl.Scorer(j.name, j.model, j.frames, 2.0) for j in judges)
    return wl.Judge(videos=JUDGED_VIDEOS, scorers=judges)


def _synthesize(cfg, arch, sizes: Sizes):
    return wl.Synthesize(videos=sizes.of(cfg.videos) * len(cfg.negatives))


BUILDERS = {"sft": _sft, "rwr": _rwr, "kto": _kto, "dpo": _dpo, "grpo": _grpo, "reward_model": _reward_model,
            "generate": _generate, "evaluate": _evaluate, "judge": _judge, "synthesize": _synthesize}
assert set(BUILDERS) == set(JOB_KINDS), "every job kind (vpolang/jobconfig.py) has one builder"
