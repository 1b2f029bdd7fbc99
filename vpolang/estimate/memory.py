"""Peak memory per GPU, as named parts in bytes, then one total with the allocator's margin.

Training keeps, per GPU: the weights, their gradients and the AdamW state (ZeRO shards them over the
world: stage 1 the optimizer state, 2 also the gradients, 3 also the weights), the activations of the
graphs alive at the peak, and whatever frozen models the job holds (reference, VAE, scorers). Mixed
precision full fine-tuning costs 16 bytes per parameter: bf16 weights (2) and gradients (2), fp32
master weights and two Adam moments (12). LoRA trains only the adapters; the frozen base keeps its
bf16 weights and serves as the reference with the adapters switched off, so it needs no copy.

Prompts are assumed encoded in a first pass with the text encoder leaving the GPU afterwards (as
DanceGRPO's preprocessing does): it is not part of any peak. Activation constants: calibration.py."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .calibration import CHECKPOINT_BOUNDARY_BYTES, CONTEXT_GIB, FRAGMENTATION, GIB


@dataclass(frozen=True)
class Network:
    """A network as memory sees it: sizes, and activation bytes per token per layer per unit of width."""

    params: int
    layers: int
    hidden: int
    activation_bytes: float
    weight_bytes: int = 2
    trainable: int | None = None  # None: every parameter (full fine-tuning); else the LoRA adapters

    @property
    def trainable_params(self) -> int:
        return self.params if self.trainable is None else self.trainable


def lora_params(layers: int, hidden: int, targets_per_layer: int, rank: int) -> int:
    """A rank-r adapter on a hidden x hidden projection adds r x (hidden + hidden) parameters."""
    return layers * targets_per_layer * rank * 2 * hidden


def optimizer_bytes_per_param(weight_bytes: int) -> int:
    """AdamW's two fp32 moments, plus an fp32 master copy when the weights are half precision."""
    return 8 if weight_bytes >= 4 else 12


def model_states(net: Network, zero_stage: int, world: int) -> dict[str, float]:
    """Weights, gradients and optimizer state on one GPU under a ZeRO stage (0-3)."""
    shard = {stage: (world if zero_stage >= stage else 1) for stage in (1, 2, 3)}
    trainable = net.trainable_params
    frozen = net.params if net.trainable is None else net.params + trainable
    parts = {"weights": frozen * net.weight_bytes / shard[3],
             "gradients": trainable * net.weight_bytes / shard[2],
             "optimizer": trainable * optimizer_bytes_per_param(net.weight_bytes) / shard[1]}
    if zero_stage >= 3 and world > 1:  # the block being computed and the next one, gathered in full
        parts["gathered_layers"] = 2 * net.params / net.layers * net.weight_bytes
    return parts


def activation_bytes(net: Network, tokens: int, checkpointing: bool) -> float:
    """Saved activations of one sample's forward, kept for its backward.

    Checkpointing keeps each block's bf16 input and recomputes one block at a time."""
    per_layer = net.activation_bytes * tokens * net.hidden
    if not checkpointing:
        return per_layer * net.layers
    return CHECKPOINT_BOUNDARY_BYTES * tokens * net.hidden * net.layers + per_layer


ALL_TO_ALLS_PER_LAYER = 6  # Ulysses, per pass: q, k, v and the output of self-attention; q and output of cross


def all_to_all_bytes(layers: int, hidden: int, tokens: int, degree: int, element_bytes: int) -> float:
    """Bytes one GPU sends per transformer pass under sequence parallelism of `degree`: each all-to-all
    moves its (tokens / degree) x hidden share, keeping 1/degree of it."""
    if degree <= 1:
        return 0.0
    share = tokens / degree * hidden * element_bytes
    return layers * ALL_TO_ALLS_PER_LAYER * share * (degree - 1) / degree


def inference_activation_bytes(net: Network, tokens: int) -> float:
    """A no-grad forward frees each block's intermediates before the next: about one block's worth."""
    return net.activation_bytes * tokens * net.hidden


@dataclass(frozen=True)
class TrainingPeak:
    """What is alive on a GPU at the worst moment of a training step."""

    micro_batch: int = 1
    branches: int = 1  # activation graphs per sample alive together (DPO standard: winner and loser)
    checkpointing: bool = False
    stash_gradient: bool = False  # decoupled DPO keeps the winner's gradient while the loser back-propagates


def training_parts(net: Network, tokens: int, peak: TrainingPeak, zero_stage: int, world: int,
                   frozen: Mapping[str, float]) -> dict[str, float]:
    """Bytes per GPU of a training step; `frozen` names the other resident models and buffers."""
    parts = model_states(net, zero_stage, world)
    parts["activations"] = activation_bytes(net, tokens, peak.checkpointing) * peak.micro_batch * peak.branches
    if peak.stash_gradient:
        parts["stashed_gradient"] = parts["gradients"]
    parts.update({name: value for name, value in frozen.items() if value})
    return parts


def total_gib(parts: Mapping[str, float]) -> float:
    """The allocated peak plus allocator fragmentation and the memory outside torch's allocator."""
    return sum(parts.values()) / GIB * (1 + FRAGMENTATION) + CONTEXT_GIB
