"""The execution block of a training job: every decision that makes it fit and run, taken once, here.

- optimiser: torch AdamW on one process (and on CPU processes); DeepSpeed ZeRO-2 when the job spans
  several GPUs; the recipe's `zero_stage` when it pins one (any device). ZeRO on one GPU partitions
  nothing and its step costs more host time than fused AdamW (runtime/trainers/updater.py).
- sequence parallelism: the recipe's `sequence_parallel` (k consecutive ranks split each row's tokens
  and hold the same rows; rows_per_rank is then a group's rows).
- rank split: every rank trains on the same number of rows of the global batch (batch.py); GRPO splits
  rollouts, not groups, so a group may lie on several ranks (its rewards are gathered before the
  group statistics).
- micro-batch x accumulation and checkpointing: what the memory model chose (estimate.layout_training),
  so the peak the plan reports is the peak of the schedule that runs.
The runtime reads this block and re-derives none of it."""
from __future__ import annotations

from vpolang.plan import ExecutionBlock, Placement

from .batch import BatchPlan


def optimizer_for(pinned_zero: int | None, world: int, on_gpu: bool) -> tuple[str, int | None]:
    """(optimizer, zero stage) of a job on `world` processes."""
    if pinned_zero is not None:
        return "deepspeed_zero", int(pinned_zero)
    if world > 1 and on_gpu:
        return "deepspeed_zero", 2
    return "torch_adamw", None


def memory_zero_stage(zero_stage: int | None) -> int:
    """The ZeRO stage memory.py shards by: torch AdamW shards nothing (as stage 0)."""
    return 0 if zero_stage is None else zero_stage


def on_gpu(placement: Placement) -> bool:
    return placement.gpus_per_node > 0 and (placement.gpu or "cpu") != "cpu"


def reward_execution(kind: str, cfg: dict) -> str | None:
    if kind == "grpo":
        return "per_rank_gathered"
    if kind == "dpo" and cfg["pairs"]["kind"] == "online":
        return "one_process"
    if kind == "rwr" or (kind == "sft" and cfg.get("weight") is not None):
        return "dataset_once"
    return None


def execution_block(kind: str, cfg: dict, placement: Placement, layout: BatchPlan,
                    checkpointing: bool) -> ExecutionBlock:
    optimizer, zero = optimizer_for(cfg.get("zero_stage"), placement.world_size, on_gpu(placement))
    spans = kind == "grpo" and layout.per_gpu % cfg["group_size"] != 0
    candidates = None
    if kind == "dpo" and cfg["pairs"]["kind"] == "online":
        candidates = layout.per_gpu * cfg["pairs"]["n"]
    return ExecutionBlock(world_size=placement.world_size, optimizer=optimizer, zero_stage=zero,
                          sequence_parallel=cfg.get("sequence_parallel", 1),
                          rows_per_rank=layout.per_gpu, micro_batch=layout.micro_batch, grad_accum=layout.grad_accum,
                          micro_batch_pinned=cfg.get("micro_batch") is not None, checkpointing=checkpointing,
                          groups_span_ranks=spans, candidates_per_rank=candidates,
                          reward_execution=reward_execution(kind, cfg))
