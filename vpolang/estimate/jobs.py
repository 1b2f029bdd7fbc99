"""Per-job estimates: the work each job kind does, the batch arithmetic, and peak memory per GPU."""
from __future__ import annotations

import glob
import math
from pathlib import Path

from pydantic import Field

from vpolang.plan import Estimate

from . import hardware
from .model import BWD_FACTOR, activation_bytes, forward_flops, tokens, vlm_flops

GIB = 2**30
CONTEXT_GIB = 1.5  # CUDA context, allocator fragmentation, comm buffers
DEFAULT_SIZES = {"prompts": 1000, "videos": 1000, "pairs": 10000, "labels": 10000}
TRAIN_KINDS = ("sft", "grpo", "dpo", "kto", "rwr")


class BatchError(ValueError):
    pass


class JobEstimate(Estimate):
    """The plan's Estimate plus what the planner had to assume (dataset sizes it could not count)."""

    assumed: list[str] = Field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.capacity_gib is None or self.peak_memory_gib <= self.capacity_gib


def dataset_size(spec: dict | None, base: Path, assumed: list[str]) -> int:
    """Items in a dataset: known for the shapes world, counted for local files, else a stated default."""
    if not spec:
        return 0
    kind = spec.get("kind")
    if kind in ("shapes_prompts", "shapes_videos"):
        return int(spec["n"])
    if kind == "mix":
        return sum(dataset_size(s, base, assumed) for s in spec["sources"])
    path = spec.get("path")
    if kind in ("prompts", "pairs", "labels") and path:
        p = Path(path) if Path(path).is_absolute() else base / path
        if p.is_file():
            return sum(1 for line in p.read_text(errors="replace").splitlines() if line.strip())
    if kind == "videos" and path:
        found = glob.glob(str(Path(path) if Path(path).is_absolute() else base / path))
        if found:
            return len(found)
    default = DEFAULT_SIZES.get(kind, 1000)
    assumed.append(f"{kind} {path or ''}: {default} items assumed (file not found at plan time)".replace("  ", " "))
    return default


def _world(placement) -> int:
    return max(1, placement.nodes * max(placement.gpus_per_node, 1))


def per_gpu_batch(kind: str, cfg: dict, world: int) -> int:
    """Samples each GPU processes per optimiser step; the global batch must split evenly."""
    if kind == "grpo":
        videos = cfg["batch"] * cfg["group_size"]
        if videos % world:
            raise BatchError(f"GRPO's {cfg['batch']} prompts x group_size {cfg['group_size']} = {videos} videos do "
                             f"not split over {world} GPUs; use a prompt batch that makes it a multiple of {world}, "
                             f"e.g. batch = {_next_multiple(videos, world) // cfg['group_size']}")
        return videos // world
    batch = cfg["batch"]
    if batch % world:
        lower, upper = (batch // world) * world, _next_multiple(batch, world)
        hint = f"use {upper}" + (f" or {lower}" if lower else "")
        raise BatchError(f"global batch {batch} is not divisible by {world} GPUs; {hint}")
    return batch // world


def _next_multiple(value: int, k: int) -> int:
    return -(-value // k) * k


def train_memory(kind: str, cfg: dict, spec: dict, world: int, zero: int, micro: int, checkpointing: bool) -> dict:
    """Bytes per GPU of a training step: weights, gradients, Adam, references, frozen encoders, activations."""
    params = spec["params"]
    wbytes = 2 if spec.get("dtype", "bf16") != "fp32" else 4
    lora = cfg.get("lora_rank", 0)
    trainable = _lora_params(spec, lora) if lora else params
    shard = lambda stage: world if zero >= stage else 1  # noqa: E731
    out = {"weights": params * wbytes / (shard(3) if not lora else 1),
           "gradients": trainable * wbytes / shard(2),
           "optimizer": trainable * 12 / shard(1),
           # prompts are encoded once and cached, so training keeps only the VAE on the GPU
           "vae": spec.get("vae_params", 0) * 2}
    needs_reference = kind in ("dpo", "kto") or (kind == "grpo" and cfg.get("kl", 0) > 0)
    if needs_reference and not lora:
        out["reference"] = params * wbytes
    n_tokens = tokens(spec, cfg["frames"], cfg["resolution"])
    act = activation_bytes(spec, n_tokens, checkpointing) * micro
    if kind == "dpo":
        decoupled = cfg.get("backward") == "decoupled"
        out["activations"] = act * (1 if decoupled else 2)
        if decoupled:
            out["stashed_gradient"] = trainable * wbytes
    else:
        out["activations"] = act
    return out


def _lora_params(spec: dict, rank: int) -> int:
    return spec["layers"] * 8 * 2 * rank * spec["hidden"]  # q, k, v, o of self and cross attention


def estimate_job(job, recipe_dir: Path, usd_override: float | None) -> JobEstimate:
    cfg, kind, placement = job.config, job.kind, job.placement
    try:
        gpu = hardware.gpu(placement.gpu)
    except KeyError:
        gpu = hardware.gpu("cpu")
    world = _world(placement)
    est = JobEstimate()
    flops = _job_flops(job, recipe_dir, est)
    est.flops = flops["total"]
    est.breakdown = {k: v for k, v in flops.items() if k != "total"}
    rate = world * gpu.bf16_tflops * 1e12 * hardware.TRAIN_MFU
    steps = max(1, int(flops.get("steps", 1)))
    est.step_time_s = est.flops / steps / rate
    est.hours = est.flops / rate / 3600
    if placement.gpus_per_node > 0:
        est.gpu_hours = est.hours * world
        est.cost_usd = est.gpu_hours * (usd_override if usd_override is not None else gpu.usd_per_hour)
    if kind in TRAIN_KINDS and placement.gpus_per_node > 0:
        _fit(est, job, gpu, world)
    elif placement.gpus_per_node > 0:
        model = cfg.get("model") or {}
        est.peak_memory_gib = (model.get("params", 0) * 2 + (model.get("text_encoder_params", 0)
                                                             + model.get("vae_params", 0)) * 2) / GIB + CONTEXT_GIB
        est.capacity_gib = gpu.memory_gib
    return est


def _fit(est: JobEstimate, job, gpu, world: int) -> None:
    cfg, spec = job.config, job.config["model"]
    per_gpu = per_gpu_batch(job.kind, cfg, world)
    zero = cfg.get("zero_stage", 2)
    ckpt_options = [cfg["gradient_checkpointing"]] if cfg.get("gradient_checkpointing") is not None else [False, True]
    best = None
    for checkpointing in ckpt_options:
        for micro in [m for m in range(per_gpu, 0, -1) if per_gpu % m == 0]:
            parts = train_memory(job.kind, cfg, spec, world, zero, micro, checkpointing)
            peak = sum(parts.values()) / GIB + CONTEXT_GIB
            candidate = (peak, micro, checkpointing, parts)
            if peak <= gpu.memory_gib:
                best = candidate
                break
            if best is None or peak < best[0]:
                best = candidate
        if best and best[0] <= gpu.memory_gib:
            break
    peak, micro, checkpointing, parts = best
    est.peak_memory_gib, est.capacity_gib = peak, gpu.memory_gib
    est.micro_batch, est.grad_accum = micro, per_gpu // micro
    est.breakdown.update({f"mem_{k}_gib": v / GIB for k, v in parts.items()})
    est.breakdown["gradient_checkpointing"] = float(checkpointing)
    if checkpointing:  # recomputation costs one more forward per step
        extra = 1 / BWD_FACTOR
        est.flops *= 1 + extra
        est.step_time_s *= 1 + extra
        est.hours *= 1 + extra
        est.gpu_hours *= 1 + extra
        est.cost_usd *= 1 + extra


def fixes(job, recipe_dir: Path) -> list[str]:
    """Changes that would make an over-memory training job fit, each with its estimated peak."""
    from vpolang.plan import Placement  # noqa: F401 (typing only)

    out = []
    base = job.config
    options = []
    if job.kind == "dpo" and base.get("backward") != "decoupled":
        options.append(("backward = decoupled", {"backward": "decoupled"}, None))
    if not base.get("lora_rank"):
        options.append(("lora_rank = 64", {"lora_rank": 64}, None))
    for nodes in (job.placement.nodes * 2, job.placement.nodes * 4):
        options.append((f"nodes = {nodes} with zero_stage = 3", {"zero_stage": 3}, nodes))
    if job.kind == "dpo" and base.get("backward") != "decoupled":
        options.append(("backward = decoupled, nodes = "f"{job.placement.nodes * 2}, zero_stage = 3",
                        {"backward": "decoupled", "zero_stage": 3}, job.placement.nodes * 2))
    height, width = base["resolution"]
    if height > 480:
        options.append(("resolution = 480p", {"resolution": [480, 832]}, None))
    if base["frames"] > 17:
        options.append((f"frames = {base['frames'] // 2 + 1}", {"frames": base["frames"] // 2 + 1}, None))
    for text, change, nodes in options:
        variant = job.model_copy(deep=True)
        variant.config.update(change)
        if nodes:
            variant.placement = replace_nodes(variant.placement, nodes)
        try:
            est = estimate_job(variant, recipe_dir, None)
        except BatchError:
            continue
        if est.fits:
            out.append(f"{text} ({est.peak_memory_gib:.1f} GiB)")
    return out


def replace_nodes(placement, nodes: int):
    return placement.model_copy(update={"nodes": nodes})


def _job_flops(job, base: Path, est: JobEstimate) -> dict[str, float]:
    cfg, kind = job.config, job.kind
    model = cfg.get("model") or {}
    assumed = est.assumed
    if kind == "reward_model":
        pairs = dataset_size(cfg.get("pairs"), base, assumed) + dataset_size(cfg.get("labels"), base, assumed)
        per = vlm_flops(cfg["backbone"]["spec"], cfg.get("frames") or 8) * BWD_FACTOR * 2
        steps = math.ceil(cfg["epochs"] * pairs / cfg["batch"])
        return {"total": per * pairs * cfg["epochs"], "steps": steps, "train": per * pairs * cfg["epochs"]}
    if kind == "judge":
        judges = [j for j in cfg["judges"]]
        per_video = sum(vlm_flops(j["spec"]["model"]["spec"] if j.get("spec") and j["spec"].get("model") else
                                  {"params": 2e9, "tokens_per_frame": 64}, 8) for j in judges)
        videos = DEFAULT_SIZES["prompts"] * 4
        return {"total": per_video * videos, "steps": 1, "judge": per_video * videos}
    if kind == "synthesize":
        n = dataset_size(cfg["videos"], base, assumed)
        return {"total": 1e9 * n, "steps": 1}
    n_tokens = tokens(model, cfg["frames"], cfg["resolution"])
    fwd = forward_flops(model, n_tokens)
    T = cfg.get("sample_steps") or model.get("sample_steps", 50)
    if kind == "generate":
        prompts = dataset_size(cfg["prompts"], base, assumed)
        sampling = prompts * cfg["n"] * T * fwd
        return {"total": sampling, "steps": 1, "sampling": sampling}
    if kind == "evaluate":
        prompts = dataset_size(cfg["prompts"], base, assumed) * cfg["samples_per_prompt"]
        policies = 1 + len(cfg["against"])
        sampling = policies * prompts * T * fwd
        return {"total": sampling, "steps": 1, "sampling": sampling}
    data_field = {"sft": "data", "grpo": "prompts", "dpo": "pairs", "kto": "labels", "rwr": "data"}[kind]
    size = _train_size(cfg, data_field, base, assumed)
    steps = cfg.get("steps") or max(1, math.ceil(cfg.get("epochs", 1) * size / cfg["batch"]))
    train = fwd * BWD_FACTOR
    if kind == "sft" or kind == "rwr":
        per_step = {"train": cfg["batch"] * train}
    elif kind == "grpo":
        videos = cfg["batch"] * cfg["group_size"]
        guidance = 2 if cfg.get("guidance", 1.0) != 1.0 else 1
        trained = max(1, round(cfg["train_fraction"] * (T - 1)))
        per_step = {"sampling": videos * T * fwd * guidance,
                    "train": videos * trained * train * cfg.get("updates_per_batch", 1),
                    "reference": videos * trained * fwd if cfg.get("kl", 0) > 0 else 0.0}
    elif kind == "dpo":
        extra = 0.0
        if cfg["pairs"]["kind"] == "online":
            extra = cfg["batch"] * cfg["pairs"]["n"] * T * fwd
        per_step = {"train": cfg["batch"] * 2 * train, "reference": cfg["batch"] * 2 * fwd, "sampling": extra}
        if cfg.get("nll_real", 0) > 0:
            per_step["nll_real"] = cfg["batch"] * train
    else:  # kto
        per_step = {"train": cfg["batch"] * train, "reference": cfg["batch"] * fwd}
    out = {k: v * steps for k, v in per_step.items() if v}
    out["total"] = sum(out.values())
    out["steps"] = steps
    return out


def _train_size(cfg: dict, field_name: str, base: Path, assumed: list[str]) -> int:
    spec = cfg.get(field_name) or {}
    if spec.get("kind") in ("on_policy", "synthetic"):
        if cfg.get("steps"):
            return cfg["batch"]
        assumed.append(f"{spec['kind']} pairs: {DEFAULT_SIZES['pairs']} assumed")
        return DEFAULT_SIZES["pairs"]
    if spec.get("kind") == "online":
        return dataset_size(spec["prompts"], base, assumed)
    return dataset_size(spec, base, assumed)
