"""How a trainer turns back-propagated losses into optimiser steps.

Two implementations behind one contract: any number of `backward(loss)` calls per step, then one
`step()` that averages the gradients over the job's ranks, clips them to `grad_clip` and applies AdamW.

- `TorchUpdater`: torch AdamW, gradients averaged by our own all-reduce (parallel.py); half-precision
  weights get fp32 master copies (an Adam update at lr 1e-5 is below a bf16 weight's resolution, so
  stepping bf16 weights in place would drop most updates). The default on the CPU and on one GPU.
- `DeepSpeedUpdater`: DeepSpeed ZeRO stage 0-3. Optimiser states
  (stage >= 1), gradients (>= 2) and weights (3) are partitioned over the ranks, with fp32 master
  weights for bf16 models. DeepSpeed's gradient accumulation is "unmanaged": the trainer's `step()` is
  the boundary, so a step may back-propagate several graphs (GRPO's timesteps, DPO's branches).

Under ZeRO-2/3 gradients are reduced during each backward: every rank must back-propagate the same
number of graphs, in the same order, each step (the trainers draw the same global batch on every rank
and split it evenly, which gives that), and `.grad` is not readable (DPO's stashed schedule, which
combines two full gradients, falls back to winner-first there).

Which one a job uses is the plan's decision (its execution block: vpolang/estimate/execution.py); this
module only builds it. Why the planner never picks ZeRO on one GPU: it partitions nothing there, and
its step costs 0.25-0.32 s of host time on
Wan2.1-1.3B's 825 parameter tensors (per-tensor overflow checks and norms) against 0.057 s for fused
torch AdamW over fp32 masters (bench/results/gpu_optimizer_step.json, H100)."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import torch
from torch import nn

from runtime.context import JobContext
from runtime.errors import JobError

from .parallel import average_gradients

HALF = (torch.bfloat16, torch.float16)


def adamw(params, cfg: dict, fused: bool = False) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999),
                             fused=fused or None)


def updater_for(ctx: JobContext, module: nn.Module) -> "TorchUpdater | DeepSpeedUpdater":
    """The updater of `module`'s trainable parameters (a policy's transformer, a reward model), as the
    plan's execution block says."""
    block = ctx.execution
    processes = f"{ctx.world_size} process{'es' if ctx.world_size > 1 else ''}"
    if block.optimizer == "torch_adamw":
        updater = TorchUpdater(module, ctx.config, fused=str(ctx.device).startswith("cuda"))
        masters = " with fp32 master weights" if updater.has_masters else ""
        ctx.log(f"optimiser: torch AdamW{masters}, {processes}")
        return updater
    ctx.log(f"optimiser: DeepSpeed ZeRO-{block.zero_stage} (AdamW), {processes}")
    return DeepSpeedUpdater(ctx, module, block.zero_stage)


class TorchUpdater:
    kind = "torch"
    zero_stage = None
    reads_gradients = True  # `.grad` of the trainable parameters holds the step's gradient
    needs_uniform_backwards = False  # gradients are reduced once, in `step()`

    def __init__(self, module: nn.Module, cfg: dict, fused: bool = False):
        self.module = module
        self.cfg = cfg
        self.params = [p for p in module.parameters() if p.requires_grad]
        # fp32 parameters are their own masters; half-precision ones get an fp32 copy the optimiser steps
        self.masters = [p.detach().float().clone() if p.dtype in HALF else p for p in self.params]
        self._copies = [(p, m) for p, m in zip(self.params, self.masters) if m is not p]  # (weight, master)
        self.has_masters = bool(self._copies)
        self.optimizer = adamw(self.masters, cfg, fused=fused)

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    @property
    def forward_module(self) -> nn.Module:
        return self.module

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> float:
        """Average over the ranks, clip, step, clear; returns the gradient norm before clipping."""
        average_gradients(self.params)
        if all(p.grad is None for p in self.params):
            return 0.0  # nothing was back-propagated this step (GRPO: every rollout gated out)
        for p, m in self._copies:  # the norm, the clipping and the update in fp32
            m.grad, p.grad = (p.grad.float() if p.grad is not None else None), None
        norm = torch.nn.utils.clip_grad_norm_(self.masters, self.cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._copy_masters_to_weights()
        return float(norm)

    def _copy_masters_to_weights(self) -> None:
        if self._copies:
            with torch.no_grad():
                torch._foreach_copy_([p for p, _ in self._copies], [m for _, m in self._copies])

    @contextlib.contextmanager
    def full_weights(self) -> Iterator[None]:
        yield

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's moments and the fp32 masters (rebuilding them from half-precision weights on
        resume would round away what the updates since the last cast accumulated)."""
        masters = [m.detach().clone() for _, m in self._copies]
        return {"kind": self.kind, "state": self.optimizer.state_dict(), "masters": masters}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_kind(state, self.kind)
        self.optimizer.load_state_dict(state["state"])
        saved = state.get("masters") or [p for p, _ in self._copies]  # none saved: the loaded weights
        if len(saved) != len(self._copies):
            raise JobError(f"the checkpoint holds {len(saved)} fp32 master tensors for {len(self._copies)} "
                           "half-precision parameters (the model's dtype or trainable set changed)")
        with torch.no_grad():
            for (_, m), s in zip(self._copies, saved):
                m.copy_(s)
        self._copy_masters_to_weights()


class DeepSpeedUpdater:
    kind = "deepspeed"

    def __init__(self, ctx: JobContext, module: nn.Module, stage: int):
        import deepspeed

        self.ctx, self.module, self.zero_stage = ctx, module, stage
        self.reads_gradients = stage == 0  # ZeRO-1 and up keep gradients in their own buffers
        self.needs_uniform_backwards = stage >= 2 and ctx.world_size > 1  # reduced inside each backward
        _join_process_group(ctx)
        params = [p for p in module.parameters() if p.requires_grad]
        self.engine, self.optimizer, _, _ = deepspeed.initialize(
            model=module, model_parameters=_groups_by_dtype(params), config=deepspeed_config(ctx.config, module, stage))
        self._backwards = 0
        self._split = ctx.execution.sequence_parallel > 1

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    @property
    def forward_module(self) -> nn.Module:
        """Calls through the engine: ZeRO-3 gathers partitioned weights and hooks the backward there."""
        return self.engine

    def backward(self, loss: torch.Tensor) -> None:
        # DeepSpeed averages over every rank; a sequence-parallel group's k ranks each hold part of one
        # gradient, whose sum is wanted: k x the mean over the world is the mean over the groups
        self.engine.backward(loss * self.ctx.execution.sequence_parallel if self._split else loss)
        self._backwards += 1

    def step(self) -> float:
        """DeepSpeed reduces, clips (`gradient_clipping`) and steps; returns the global norm before clipping.
        A step in which no rank back-propagated anything is skipped, as in the torch updater."""
        done, self._backwards = self._backwards, 0
        if not _any_rank(done > 0):
            return 0.0
        if done == 0:  # ZeRO-0/1 reduce at the step: a rank without rows contributes zero gradients
            for p in self.engine.module.parameters():
                if p.requires_grad and p.grad is None:
                    p.grad = torch.zeros_like(p)
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else 0.0

    @contextlib.contextmanager
    def full_weights(self) -> Iterator[None]:
        """Every rank sees whole weights inside (ZeRO-3 gathers them; a collective: all ranks enter).
        Changes rank 0 makes inside are broadcast to the partitions on exit."""
        if self.zero_stage < 3:
            yield
            return
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(self.engine.module.parameters()), modifier_rank=0):
            yield

    def state_dict(self) -> dict[str, Any]:
        """Every rank's optimiser partition, gathered (a collective); rank 0 writes them in one checkpoint."""
        mine = self.optimizer.state_dict()
        return {"kind": self.kind, "zero_stage": self.zero_stage, "world_size": self.ctx.world_size,
                "partitions": _gather_objects(mine)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_kind(state, self.kind)
        if state["zero_stage"] != self.zero_stage or state["world_size"] != self.ctx.world_size:
            raise JobError(f"the checkpoint was written with ZeRO stage {state['zero_stage']} on "
                           f"{state['world_size']} processes; resume with the same (stage {self.zero_stage}, "
                           f"{self.ctx.world_size} processes now)")
        parts = state["partitions"]
        if self.zero_stage == 0:
            self.optimizer.load_state_dict(parts[self.ctx.rank])
        elif self.zero_stage == 3:
            self.optimizer.load_state_dict(parts, load_optimizer_states=True)
        else:  # the fp32 master weights too: rebuilding them from bf16 weights would lose precision
            self.optimizer.load_state_dict(parts, load_optimizer_states=True, load_from_fp32_weights=True)


def deepspeed_config(cfg: dict, module: nn.Module, stage: int) -> dict[str, Any]:
    """The DeepSpeed configuration for a stage's fields. The batch sizes are nominal: the trainers draw
    their own batches, and with unmanaged accumulation every `step()` is an optimiser step."""
    bf16 = any(p.dtype == torch.bfloat16 for p in module.parameters())
    keep_fp32 = list(getattr(module, "_keep_in_fp32_modules", None) or [])
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "managed_gradient_accumulation": False,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": {"stage": stage},
        "bf16": {"enabled": bf16},
        **({"data_types": {"keep_in_fp32_modules": keep_fp32}} if bf16 and keep_fp32 else {}),
        # torch's AdamW (fused on GPUs by torch itself): DeepSpeed's own Adam needs a compiled extension
        "optimizer": {"type": "AdamW", "params": {"lr": cfg.lr, "betas": [0.9, 0.999], "eps": 1e-8,
                                                  "weight_decay": cfg.weight_decay, "torch_adam": True}},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**62,
        "wall_clock_breakdown": False,
    }


def _groups_by_dtype(params: list[nn.Parameter]) -> list[dict]:
    """One parameter group per dtype: ZeRO flattens each group into one buffer (bf16 weights and the
    fp32 norms diffusers keeps are separate buffers)."""
    groups: dict[torch.dtype, list] = {}
    for p in params:
        groups.setdefault(p.dtype, []).append(p)
    return [{"params": ps} for ps in groups.values()]


def _join_process_group(ctx: JobContext) -> None:
    """DeepSpeed needs torch.distributed even for one process (a multi-process job has joined already),
    and reads the layout from torchrun's variables, which Slurm's launcher does not set."""
    import torch.distributed as dist

    for name, value in (("RANK", ctx.rank), ("LOCAL_RANK", ctx.local_rank), ("WORLD_SIZE", ctx.world_size)):
        os.environ.setdefault(name, str(value))
    if dist.is_available() and dist.is_initialized():
        return
    import deepspeed

    from runtime.distributed import backend_for, free_port

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    deepspeed.init_distributed(dist_backend=backend_for(str(ctx.device)), auto_mpi_discovery=False,
                               init_method="env://", rank=0, world_size=1)


def _any_rank(flag: bool) -> bool:
    import torch.distributed as dist

    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _gather_objects(obj: Any) -> list[Any]:
    import torch.distributed as dist

    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def _check_kind(state: dict, kind: str) -> None:
    found = state.get("kind", "torch") if isinstance(state, dict) else "torch"
    if found != kind:
        raise JobError(f"the checkpoint's optimiser state was written by the {found} updater, this job uses "
                       f"{kind} (zero_stage changed?); resume with the setting it was written with")
