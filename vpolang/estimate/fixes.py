"""Changes that would make an over-memory job fit, each checked by re-running the estimate.

Tried in this order: changes that keep the experiment (same gradients) — the decoupled DPO backward,
a smaller pinned micro-batch (more accumulation), activation checkpointing, sequence parallelism (the
smallest degree that fits: it divides one video's activations), ZeRO-3, more nodes with ZeRO-3 — then
changes to the experiment — LoRA, a lower resolution, fewer frames. When no single change fits, pairs
of them are tried. Last, the smallest GPU of the catalogue on which the job fits unchanged.

Every fix is re-estimated, so a change appears only where it makes the job fit: ZeRO-3, more nodes and
LoRA shrink the weights' states (weights, gradients, optimiser), never one video's activations, so
alone they cannot fix a job whose activations fill the GPU (they are not tried alone then), only beside
a change that shrinks the activations; and when nothing fits, `no_fit_hint` names what would help.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import combinations

from .arch import RESOLUTIONS, Clip, VideoDiT
from .batch import BatchError
from .calibration import GIB
from .estimate import Cluster, Fix, estimate_job
from .flops import latent_frames
from .hardware import CATALOGUE
from .memory import total_gib

LORA_RANK = 64
MAX_FIXES = 6
STATE_GROUPS = ("scale", "lora")  # changes that shrink only the weights' states
STATE_PARTS = ("weights", "gradients", "optimizer", "gathered_layers", "stashed_gradient")


def sequence_degrees(arch: VideoDiT | None, cluster: Cluster) -> list[int]:
    """Sequence-parallel degrees above the current one that divide the heads and the GPUs of a node (a
    group inside one node: its all-to-alls stay on NVLink)."""
    if arch is None or not cluster.on_gpu:
        return []
    return [k for k in range(2, cluster.gpus_per_node + 1)
            if k > cluster.sequence_parallel and cluster.gpus_per_node % k == 0 and arch.heads % k == 0
            and cluster.world % k == 0]


def activations_overflow(memory_gib: dict[str, float], capacity_gib: float | None) -> bool:
    """True when the activations (and the other parts no sharding of the states touches) exceed the GPU
    even with the weights' states sharded to nothing: ZeRO-3, nodes and LoRA cannot make it fit."""
    if capacity_gib is None:
        return False
    rest = sum(v for k, v in memory_gib.items() if k not in STATE_PARTS)
    return total_gib({"rest": rest * GIB}) > capacity_gib


@dataclass(frozen=True)
class Change:
    text: str  # recipe syntax
    workload: dict = field(default_factory=dict)  # fields replaced on the workload
    cluster: dict = field(default_factory=dict)  # fields replaced on the cluster
    group: str = ""  # changes of one group are alternatives, never combined

    def apply(self, workload, cluster: Cluster):
        return replace(workload, **self.workload), replace(cluster, **self.cluster)

    def plus(self, other: Change) -> Change:
        return Change(f"{self.text}, {other.text}", {**self.workload, **other.workload},
                      {**self.cluster, **other.cluster}, f"{self.group}+{other.group}")


def lower_resolution(clip: Clip) -> tuple[str, tuple[int, int]] | None:
    """The largest named resolution with fewer pixels than the clip's."""
    smaller = [(h * w, name, (h, w)) for name, (h, w) in RESOLUTIONS.items() if h * w < clip.height * clip.width]
    return max(smaller)[1:] if smaller else None


def fewer_frames(arch: VideoDiT, frames: int) -> int | None:
    """About half the latent frames, as a frame count the VAE accepts (1 + k x t_stride)."""
    stride = arch.vae_stride[0]
    latent = latent_frames(arch, frames)
    half = max(1, (latent + 1) // 2)
    shorter = 1 + (half - 1) * stride if stride > 1 else half
    return shorter if shorter < frames else None


def candidate_changes(workload, arch: VideoDiT | None, cluster: Cluster) -> list[Change]:
    out: list[Change] = []
    training = workload.trains is not None
    if getattr(workload, "backward", None) == "standard":
        out.append(Change("backward = decoupled", {"backward": "decoupled"}, group="backward"))
    if training and (workload.micro_batch or 1) > 1:  # a pinned micro-batch: accumulate more instead
        out.append(Change("micro_batch = 1", {"micro_batch": 1}, group="micro_batch"))
    if training and workload.checkpointing is False:
        out.append(Change("gradient_checkpointing = true", {"checkpointing": True}, group="checkpointing"))
    if training and workload.trains == "dit":
        for k in sequence_degrees(arch, cluster):
            out.append(Change(f"sequence_parallel = {k}", cluster={"sequence_parallel": k}, group="sequence"))
    if training and cluster.on_gpu:
        if cluster.zero_stage < 3 and cluster.world > 1:
            out.append(Change("zero_stage = 3", cluster={"zero_stage": 3}, group="scale"))
        for nodes in (cluster.nodes * 2, cluster.nodes * 4):
            out.append(Change(f"nodes = {nodes}, zero_stage = 3", cluster={"nodes": nodes, "zero_stage": 3},
                              group="scale"))
    if training and not workload.lora_rank:
        out.append(Change(f"lora_rank = {LORA_RANK}", {"lora_rank": LORA_RANK}, group="lora"))
    clip = getattr(workload, "clip", None)
    if clip is not None and arch is not None:
        lower = lower_resolution(clip)
        if lower:
            out.append(Change(f"resolution = {lower[0]}", {"clip": replace(clip, height=lower[1][0],
                                                                             width=lower[1][1])}, group="resolution"))
        shorter = fewer_frames(arch, clip.frames)
        if shorter:
            out.append(Change(f"frames = {shorter}", {"clip": replace(clip, frames=shorter)}, group="frames"))
    return out


def _try(change: Change, workload, arch, cluster: Cluster) -> Fix | None:
    try:
        w, c = change.apply(workload, cluster)
        est = estimate_job(w, arch, c, with_fixes=False)
    except BatchError:  # e.g. more nodes than the global batch can be split over
        return None
    return Fix(change.text, est.peak_memory_gib, est.capacity_gib, est.hours, est.cost_usd) if est.fits else None


def _bigger_gpu(workload, arch, cluster: Cluster) -> Fix | None:
    for gpu in sorted(CATALOGUE, key=lambda g: g.memory_gib):
        if gpu.memory_gib > cluster.gpu.memory_gib and gpu.name != "cpu":
            fix = _try(Change(f'gpu = "{gpu.name}"', cluster={"gpu": gpu, "usd_per_gpu_hour": None}),
                       workload, arch, cluster)
            if fix:
                return fix
    return None


def _first_of_each_group(changes: list[tuple[Change, Fix | None]]) -> list[Fix]:
    """The fitting fixes, keeping only the first that fits of the sequence-parallel degrees (the
    smallest: the least all-to-all traffic)."""
    out, seen = [], set()
    for change, fix in changes:
        if fix is None or (change.group.startswith("sequence") and change.group in seen):
            continue
        seen.add(change.group)
        out.append(fix)
    return out


def suggest_fixes(workload, arch: VideoDiT | None, cluster: Cluster, limit: int = MAX_FIXES,
                  memory_gib: dict[str, float] | None = None) -> tuple[Fix, ...]:
    """Fixes that make the job fit, single changes first, then pairs when no single change does.
    `memory_gib`: the job's parts, to leave out changes that cannot shrink the part that overflows."""
    singles = candidate_changes(workload, arch, cluster)
    states_only = activations_overflow(memory_gib or {}, cluster.capacity_gib)  # these cannot fit alone
    found = _first_of_each_group([(c, _try(c, workload, arch, cluster)) for c in singles
                                  if not (states_only and c.group in STATE_GROUPS)])
    if not found:
        pairs = [a.plus(b) for a, b in combinations(singles, 2) if a.group != b.group]
        found = _first_of_each_group([(c, _try(c, workload, arch, cluster)) for c in pairs])
    gpu = _bigger_gpu(workload, arch, cluster) if cluster.on_gpu else None
    return tuple(found[:limit] + ([gpu] if gpu else []))


def no_fit_hint(memory_gib: dict[str, float], capacity_gib: float | None, arch: VideoDiT | None,
                cluster: Cluster) -> str:
    """E0302's hint when no change (or pair) fits: what the overflowing part is and what shrinks it."""
    if activations_overflow(memory_gib, capacity_gib):
        act = memory_gib.get("activations", 0.0)
        most = max(sequence_degrees(arch, cluster) or [cluster.sequence_parallel])
        return (f"one video's activations ({act:.0f} GiB) do not fit: ZeRO-3, more nodes and LoRA do not shrink "
                f"them; split the video with sequence_parallel (up to {most} on this node, more GPUs per node "
                "for more), or train on a smaller clip (resolution, frames)")
    return "no single change makes it fit; combine sequence_parallel, ZeRO-3, more nodes and a smaller clip"
