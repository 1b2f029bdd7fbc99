"""One entry point: a job's FLOPs, time, GPU-hours, dollars, peak memory per GPU, batch layout and fit.

    estimate_job(workload, arch, cluster) -> JobEstimate

`workload` is one of workload.py's kinds, `arch` the diffusion transformer it runs (None for jobs that
only train or run scorers), `cluster` the GPUs it gets. Training jobs get the recipe's micro-batch, or the largest
that fits, with activation checkpointing switched on only when nothing fits without it (unless the recipe
decides): the schedule the plan's execution block records and the runtime executes; a job that still
does not fit carries the fixes that would make it fit (fixes.py)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .arch import VideoDiT
from .batch import BatchError, BatchPlan, divisors_ascending, solve
from .calibration import (COMPILED_ACTIVATION_BYTES, COMPILED_FORWARD_TIME, COMPILED_TRAIN_TIME,
                          DIT_ACTIVATION_BYTES, GIB, HOST_FLOOR_FORWARD_S, HOST_FLOOR_TRAIN_S, LM_ACTIVATION_BYTES,
                          OPTIMIZER_STEP_S, WAN_PARAMS, ZERO_OPTIMIZER_STEP_S, Efficiency, dit_slowdown)
from .flops import (scorer_pass, text_encoder_flops, tokens_per_video, transformer_pass, vae_decode_flops,
                    vae_encode_flops)
from .hardware import INTERNODE_GB_S, Gpu, default_efficiency
from .memory import (Network, all_to_all_bytes, inference_activation_bytes, lora_params, total_gib,
                     training_parts)
from .workload import Work, scorer_weight_bytes

TRAIN_PARTS = ("train", "scorer_train")  # timed at the training efficiency; the rest are no-grad passes
# the trained policy's own passes
COMPILED_PASSES = {"train": COMPILED_TRAIN_TIME, "sampling": COMPILED_FORWARD_TIME,
                   "recompute": COMPILED_FORWARD_TIME}
DIT_PASSES = {"train": "train", "sampling": "sample", "reference": "reference", "recompute": "recompute",
              "prior": "prior"}  # part: Work field


@dataclass(frozen=True)
class Cluster:
    """Where a job runs. gpus_per_node = 0 means CPUs only (times from the `cpu` entry, no GPU-hours)."""

    gpu: Gpu
    nodes: int = 1
    gpus_per_node: int = 1
    zero_stage: int = 2
    usd_per_gpu_hour: float | None = None  # None: the catalogue's price
    efficiency: Efficiency | None = None  # None: calibration.EFFICIENCY for this GPU
    sequence_parallel: int = 1  # GPUs splitting each video's tokens (Ulysses)
    interconnect_gb_s: float | None = None  # None: the catalogue's link of this GPU (hardware.py)

    @property
    def world(self) -> int:
        return self.nodes * max(self.gpus_per_node, 1)

    @property
    def data_parallel(self) -> int:
        """Groups holding different rows: the world over the sequence-parallel degree."""
        return max(1, self.world // self.sequence_parallel)

    @property
    def link_gb_s(self) -> float:
        """GB/s per GPU a sequence-parallel group's all-to-all runs at: the node's link while a group
        stays inside one node, the network's when it spans nodes."""
        if self.sequence_parallel > max(self.gpus_per_node, 1):
            return min(self.interconnect_gb_s or self.gpu.link_gb_s, INTERNODE_GB_S)
        return self.interconnect_gb_s or self.gpu.link_gb_s

    @property
    def on_gpu(self) -> bool:
        return self.gpus_per_node > 0

    @property
    def capacity_gib(self) -> float | None:
        """GPU memory a job must fit in; None on CPUs, where host memory is not checked."""
        return self.gpu.memory_gib if self.on_gpu else None

    def seconds(self, flops: float, training: bool) -> float:
        eff = self.efficiency or default_efficiency(self.gpu)
        rate = self.world * self.gpu.bf16_tflops * 1e12 * (eff.train if training else eff.inference)
        return flops / rate


@dataclass(frozen=True)
class Fix:
    """A change to the recipe and what the estimate says it gives."""

    change: str  # in recipe syntax, e.g. "backward = decoupled, nodes = 2, zero_stage = 3"
    peak_memory_gib: float
    capacity_gib: float
    hours: float
    cost_usd: float

    def __str__(self) -> str:
        return f"{self.change} ({self.peak_memory_gib:.1f} GiB, {self.hours:,.1f} h, ${self.cost_usd:,.0f})"


@dataclass(frozen=True)
class JobEstimate:
    kind: str
    flops: float  # the whole job, setup included
    steps: int  # optimiser steps (training) or waves of one video per GPU (inference)
    step_time_s: float
    hours: float  # wall-clock
    gpu_hours: float
    cost_usd: float
    peak_memory_gib: float  # per GPU, allocator margin included
    capacity_gib: float | None  # None on CPUs: not checked
    micro_batch: int | None = None
    grad_accum: int | None = None
    checkpointing: bool = False
    flops_by_part: dict[str, float] = field(default_factory=dict)
    memory_gib: dict[str, float] = field(default_factory=dict)  # allocated bytes by part, in GiB
    fixes: tuple[Fix, ...] = ()

    @property
    def fits(self) -> bool:
        return self.capacity_gib is None or self.peak_memory_gib <= self.capacity_gib

    @property
    def breakdown(self) -> dict[str, float]:
        """The flat record a plan stores for people: FLOPs by part, steps, memory by part. Decisions the
        runtime executes (micro-batch, checkpointing) are in the plan's execution block, not here."""
        out = {part: value for part, value in self.flops_by_part.items() if value}
        out["steps"] = float(self.steps)
        out.update({f"mem_{part}_gib": value for part, value in self.memory_gib.items()})
        return out


def flops_by_part(work: Work, arch: VideoDiT | None, clip, checkpointing: bool) -> dict[str, float]:
    """FLOPs of the passes in `work` (checkpointing recomputes the forward of trained passes)."""
    parts = {"train": 0.0, "sampling": 0.0, "reference": 0.0, "recompute": 0.0, "prior": 0.0, "vae": 0.0,
             "text": 0.0}
    if arch is not None and clip is not None:
        dit = transformer_pass(arch, tokens_per_video(arch, clip))
        parts.update(train=work.train * dit.training(checkpointing), sampling=work.sample * dit.forward,
                     reference=work.reference * dit.forward, recompute=work.recompute * dit.forward,
                     prior=work.prior * dit.forward, text=work.prompts * text_encoder_flops(arch),
                     vae=work.vae_encode * vae_encode_flops(arch, clip) + work.vae_decode * vae_decode_flops(arch, clip))
    parts["scoring"] = sum(videos * scorer_pass(s.model, s.frames).forward for s, videos in work.scored)
    parts["scorer_train"] = sum(videos * scorer_pass(s.model, s.frames).training(checkpointing)
                                for s, videos in work.scorer_train)
    return parts


def _part_seconds(part: str, flops: float, cluster: Cluster, train_factor: float) -> float:
    return cluster.seconds(flops, part in TRAIN_PARTS) * (train_factor if part == "train" else 1.0)


def _seconds(parts: dict[str, float], cluster: Cluster, train_factor: float) -> float:
    return sum(_part_seconds(part, flops, cluster, train_factor) for part, flops in parts.items() if flops)


def _gpu_step_seconds(work: Work, parts: dict[str, float], arch: VideoDiT, clip, cluster: Cluster,
                      train_factor: float, micro_batch: int, compiled: bool = False,
                      checkpointing: bool = False) -> float:
    """A step's seconds on GPUs: each transformer pass at the efficiency its tokens reach, but never
    faster than the host can launch its kernels (calibration: HOST_FLOOR_*); other parts at the
    device's efficiency. Sampling runs a GPU's rollouts in one batch; training and reference passes
    run micro-batches."""
    tokens = tokens_per_video(arch, clip) / cluster.sequence_parallel  # each GPU's share of a video
    total = 0.0
    for part, flops in parts.items():
        if not flops:
            continue
        seconds = _part_seconds(part, flops, cluster, train_factor)
        if compiled and part in COMPILED_PASSES:
            seconds *= COMPILED_PASSES[part]
        if part in DIT_PASSES:
            videos = getattr(work, DIT_PASSES[part]) / cluster.data_parallel
            sampled = part in ("sampling", "prior")
            batch = work.sample_batch if sampled else min(micro_batch, work.update_batch or micro_batch)
            batch = max(1.0, min(videos, batch))
            floor = (HOST_FLOOR_TRAIN_S if part == "train" else HOST_FLOOR_FORWARD_S) * arch.layers
            seconds = max(seconds * dit_slowdown(tokens * batch), videos / batch * floor)
            seconds += all_to_all_seconds(arch, tokens_per_video(arch, clip), videos, cluster,
                                          training=part == "train", checkpointing=checkpointing)
        total += seconds
    return total


def all_to_all_seconds(arch: VideoDiT, tokens: int, videos: float, cluster: Cluster, training: bool,
                       checkpointing: bool) -> float:
    """Sequence parallelism's all-to-alls of `videos` transformer passes on one GPU, at the link's
    bandwidth (not overlapped with compute: an upper bound)."""
    if cluster.sequence_parallel == 1:
        return 0.0
    passes = (3 if checkpointing else 2) if training else 1  # forward, backward, recomputed forward
    sent = all_to_all_bytes(arch.layers, arch.hidden, tokens, cluster.sequence_parallel, arch.weight_bytes)
    return videos * passes * sent / (cluster.link_gb_s * 1e9)


def optimizer_step_seconds(trainable_params: float, cluster: Cluster) -> float:
    """The optimiser's step: fused torch AdamW on one GPU, DeepSpeed ZeRO's on several (each GPU steps its
    partition, but the per-tensor host work does not shrink with it)."""
    per_param = (ZERO_OPTIMIZER_STEP_S if cluster.world > 1 else OPTIMIZER_STEP_S) / WAN_PARAMS
    return trainable_params * per_param


def _trained_network(workload, arch: VideoDiT | None) -> tuple[Network, int]:
    """The network a training job updates and its tokens per sample."""
    if workload.trains == "dit":
        lora = lora_params(arch.layers, arch.hidden, arch.lora_targets_per_layer, workload.lora_rank)
        activations = DIT_ACTIVATION_BYTES * (COMPILED_ACTIVATION_BYTES if workload.compiled else 1.0)
        net = Network(arch.params, arch.layers, arch.hidden, activations, arch.weight_bytes,
                      lora if workload.lora_rank else None)
        return net, tokens_per_video(arch, workload.clip)
    vlm = workload.model  # lora on q, k, v, o of each block
    lora = lora_params(vlm.layers, vlm.hidden, 4, workload.lora_rank)
    net = Network(vlm.params, vlm.layers, vlm.hidden, LM_ACTIVATION_BYTES, vlm.weight_bytes,
                  lora if workload.lora_rank else None)
    return net, vlm.tokens(workload.frames)


def layout_training(workload, arch: VideoDiT | None, cluster: Cluster) -> tuple[BatchPlan, bool, dict[str, float]]:
    """Micro-batch, checkpointing and memory parts (bytes) of a training job: the recipe's micro-batch
    when it pins one (which must divide a GPU's share of the batch), else the largest that fits without
    checkpointing, else with it; if nothing fits, micro-batch 1 (or the pinned one) at the smallest peak.
    On CPUs the `cpu` entry's memory (the CI machine's) guides the choice without being enforced."""
    net, tokens = _trained_network(workload, arch)
    tokens = -(-tokens // cluster.sequence_parallel)  # this GPU's share of each video's tokens
    per_gpu = workload.per_gpu(cluster.data_parallel)
    frozen = workload.frozen_bytes(arch, per_gpu) if workload.trains == "dit" else {}
    target = cluster.gpu.memory_gib
    pinned = workload.micro_batch
    if pinned is not None and per_gpu % pinned:
        options = ", ".join(str(d) for d in divisors_ascending(per_gpu))
        who = (f"{cluster.world} GPU(s)" if cluster.sequence_parallel == 1 else
               f"{cluster.data_parallel} group(s) of {cluster.sequence_parallel} GPUs")
        raise BatchError(f"micro_batch = {pinned} does not divide the {per_gpu} rows each of {who} "
                         f"trains on per step; use micro_batch = {options}")

    def parts(micro: int, checkpointing: bool) -> dict[str, float]:
        return training_parts(net, tokens, workload.training_peak(micro, checkpointing), cluster.zero_stage,
                              cluster.world, frozen)

    options = [workload.checkpointing] if workload.checkpointing is not None else [False, True]
    smallest = pinned or 1
    for checkpointing in options:
        if pinned is not None:
            fits = total_gib(parts(pinned, checkpointing)) <= target
            plan = BatchPlan(per_gpu, pinned, per_gpu // pinned) if fits else None
        else:
            plan = solve(per_gpu, lambda micro: total_gib(parts(micro, checkpointing)) <= target)
        if plan:
            return plan, checkpointing, parts(plan.micro_batch, checkpointing)
    return BatchPlan(per_gpu, smallest, per_gpu // smallest), options[-1], parts(smallest, options[-1])


def inference_parts(workload, arch: VideoDiT | None) -> dict[str, float]:
    """Bytes per GPU of an inference job: the weights it holds and one block's no-grad activations."""
    parts = {"scorers": scorer_weight_bytes(workload.scorers)}
    acts = [inference_activation_bytes(Network(s.model.params, s.model.layers, s.model.hidden, LM_ACTIVATION_BYTES),
                                       s.model.tokens(s.frames)) for s in workload.scorers]
    if workload.uses_policy:
        parts["weights"] = arch.params * arch.weight_bytes
        parts["vae"] = arch.vae_params * 4.0
        dit = Network(arch.params, arch.layers, arch.hidden, DIT_ACTIVATION_BYTES)
        guided = 2 if workload.guidance != 1.0 else 1
        acts.append(guided * inference_activation_bytes(dit, tokens_per_video(arch, workload.clip)))
    parts["activations"] = max(acts, default=0.0)
    return {name: value for name, value in parts.items() if value}


def estimate_job(workload, arch: VideoDiT | None, cluster: Cluster, *, with_fixes: bool = True) -> JobEstimate:
    """The estimate of one job; raises batch.BatchError when its batch cannot be split over the GPUs."""
    training = workload.trains is not None
    if training:
        plan, checkpointing, memory = layout_training(workload, arch, cluster)
    else:
        plan, checkpointing, memory = None, False, inference_parts(workload, arch)
    clip = getattr(workload, "clip", None)
    steps = workload.total_steps(cluster.data_parallel)
    step_work = workload.step_work(cluster.data_parallel)
    if plan is not None and hasattr(workload, "with_accumulation"):  # the passes of the block that runs
        step_work = workload.with_accumulation(step_work, plan.grad_accum)
    step_parts = flops_by_part(step_work, arch, clip, checkpointing)
    setup_parts = flops_by_part(workload.setup_work(), arch, clip, checkpointing)
    validation = getattr(workload, "validation", None)  # `with validate`: once per job, like the setup
    if validation is not None:
        for part, flops in flops_by_part(validation, arch, clip, checkpointing).items():
            setup_parts[part] = setup_parts.get(part, 0.0) + flops
    train_factor = workload.train_time_factor if training else 1.0
    if cluster.on_gpu and arch is not None and clip is not None:
        step_time = _gpu_step_seconds(step_work, step_parts, arch, clip, cluster,
                                      train_factor, plan.micro_batch if plan else 1,
                                      compiled=getattr(workload, "compiled", False), checkpointing=checkpointing)
    else:
        step_time = _seconds(step_parts, cluster, train_factor)
    if training and cluster.on_gpu:
        step_time += optimizer_step_seconds(_trained_network(workload, arch)[0].trainable_params, cluster)
    hours = (_seconds(setup_parts, cluster, 1.0) + steps * step_time) / 3600
    gpu_hours = hours * cluster.world if cluster.on_gpu else 0.0
    price = cluster.usd_per_gpu_hour if cluster.usd_per_gpu_hour is not None else cluster.gpu.usd_per_hour
    by_part = {part: steps * step_parts[part] + setup_parts[part] for part in step_parts}
    estimate = JobEstimate(
        kind=workload.kind, flops=sum(by_part.values()), steps=steps, step_time_s=step_time, hours=hours,
        gpu_hours=gpu_hours, cost_usd=gpu_hours * price,
        peak_memory_gib=total_gib(memory) if (training or memory) else 0.0, capacity_gib=cluster.capacity_gib,
        micro_batch=plan.micro_batch if plan else None, grad_accum=plan.grad_accum if plan else None,
        checkpointing=checkpointing, flops_by_part=by_part, memory_gib={k: v / GIB for k, v in memory.items()})
    if with_fixes and not estimate.fits:
        from .fixes import suggest_fixes  # fixes re-run this function

        estimate = replace(estimate, fixes=suggest_fixes(workload, arch, cluster, memory_gib=estimate.memory_gib))
    return estimate
