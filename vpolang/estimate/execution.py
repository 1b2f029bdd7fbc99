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
- reward execution: serial, or concurrent threads (one CUDA stream per reward) on GPUs where one
  call scores several rewards (`reward_execution` below).
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


def _reward_names(expr) -> set[str]:
    """The distinct rewards a (typed) reward expression runs (a multi-head reward runs once for all its heads)."""
    if expr is None:
        return set()
    refs = [t.reward for t in expr.terms] if expr.kind == "sum" else expr.rewards
    return {ref["name"] for ref in refs}


def reward_execution(kind: str, cfg, gpu: bool) -> str | None:
    """How the job runs the rewards it scores together: `threads` (each reward on its own thread and
    CUDA stream, overlapping on the GPU: runtime/rewards/concurrent.py) when it is on GPUs and one call
    scores several distinct rewards (grpo's reward expression, online dpo's judges), else `serial`;
    None for a job that scores nothing. The runtime passes this mode to every scoring call.
    `cfg`: the job's typed config (vpolang/jobconfig.py)."""
    if kind == "grpo":
        together = len(_reward_names(cfg.reward))
    elif kind == "dpo" and cfg.pairs.kind == "online":
        together = len({j["name"] for j in cfg.pairs.judges})
    elif kind == "rwr" or (kind == "sft" and cfg.weight is not None):
        together = 1
    else:
        return None
    return "threads" if gpu and together > 1 else "serial"


def execution_block(kind: str, cfg, placement: Placement, layout: BatchPlan,
                    checkpointing: bool) -> ExecutionBlock:
    """`cfg`: the job's typed config (vpolang/jobconfig.py) of a training kind."""
    gpu = on_gpu(placement)
    optimizer, zero = optimizer_for(cfg.zero_stage, placement.world_size, gpu)
    spans = kind == "grpo" and layout.per_gpu % cfg.group_size != 0
    candidates = None
    if kind == "dpo" and cfg.pairs.kind == "online":
        candidates = layout.per_gpu * cfg.pairs.n
    return ExecutionBlock(world_size=placement.world_size, optimizer=optimizer, zero_stage=zero,
                          sequence_parallel=getattr(cfg, "sequence_parallel", 1),
                          rows_per_rank=layout.per_gpu, micro_batch=layout.micro_batch, grad_accum=layout.grad_accum,
                          micro_batch_pinned=cfg.micro_batch is not None, checkpointing=checkpointing,
                          groups_span_ranks=spans, candidates_per_rank=candidates,
                          reward_execution=reward_execution(kind, cfg, gpu))
