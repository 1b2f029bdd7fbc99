"""The torch updater: fp32 master weights for half-precision models, checkpointed with the optimiser;
which updater a job gets."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from runtime.trainers.updater import TorchUpdater
from vpolang.jobconfig import CONFIGS

CFG = CONFIGS["sft"].model_construct(lr=1e-4, grad_clip=1e9)  # typed, the schema's defaults elsewhere


def bf16_scalar(value: float = 1.0) -> nn.Module:
    module = nn.Module()
    module.w = nn.Parameter(torch.tensor([value], dtype=torch.bfloat16))
    return module


def step_with_unit_gradient(updater: TorchUpdater, module: nn.Module) -> None:
    module.w.grad = torch.ones_like(module.w)
    updater.step()


def test_updates_below_bf16_resolution_accumulate_in_the_masters():
    # Adam's first steps move a weight by ~lr = 1e-4; bf16 resolves 2**-7 = 0.0078 at 1.0, so stepping
    # the bf16 weight in place would leave it at 1.0 for ever. The master accumulates and the weight
    # follows it, rounded.
    module = bf16_scalar()
    updater = TorchUpdater(module, CFG)
    assert updater.has_masters
    for _ in range(200):
        step_with_unit_gradient(updater, module)
    master = updater.masters[0]
    assert master.dtype == torch.float32
    assert master.item() == pytest.approx(1.0 - 200 * 1e-4, abs=2e-4)
    assert module.w.item() == master.to(torch.bfloat16).item() < 1.0
    assert module.w.grad is None


def test_fp32_parameters_are_their_own_masters():
    module = nn.Linear(3, 2)
    updater = TorchUpdater(module, CFG)
    assert not updater.has_masters and all(m is p for m, p in zip(updater.masters, module.parameters()))


def test_a_checkpoint_restores_the_masters_not_the_rounded_weights():
    module = bf16_scalar()
    updater = TorchUpdater(module, CFG)
    for _ in range(30):
        step_with_unit_gradient(updater, module)
    state = updater.state_dict()
    weights = {k: v.clone() for k, v in module.state_dict().items()}

    resumed_module = bf16_scalar(5.0)
    resumed_module.load_state_dict(weights)
    resumed = TorchUpdater(resumed_module, CFG)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.masters[0], updater.masters[0])
    assert resumed.masters[0].item() != resumed_module.w.float().item()  # finer than the bf16 weight
    for _ in range(10):
        step_with_unit_gradient(updater, module)
        step_with_unit_gradient(resumed, resumed_module)
    assert torch.equal(resumed.masters[0], updater.masters[0]) and torch.equal(resumed_module.w, module.w)


def test_a_checkpoint_without_masters_takes_them_from_the_loaded_weights():
    module = bf16_scalar(5.0)
    updater = TorchUpdater(module, CFG)
    state = updater.state_dict()
    del state["masters"]
    module.w.data.fill_(2.0)  # the checkpoint's weights, loaded before the optimiser state
    updater.load_state_dict(state)
    assert updater.masters[0].item() == 2.0


def test_zero_partitions_only_jobs_spanning_several_gpus_unless_asked():
    """The planner's choice (the runtime builds what the plan's execution block names)."""
    from vpolang.estimate.execution import optimizer_for

    assert optimizer_for(None, 1, on_gpu=False) == ("torch_adamw", None)
    assert optimizer_for(None, 2, on_gpu=False) == ("torch_adamw", None)
    assert optimizer_for(None, 1, on_gpu=True) == ("torch_adamw", None)  # nothing to partition; ZeRO steps slower
    assert optimizer_for(None, 2, on_gpu=True) == ("deepspeed_zero", 2)
    assert optimizer_for(3, 1, on_gpu=True) == ("deepspeed_zero", 3)
    assert optimizer_for(0, 1, on_gpu=False) == ("deepspeed_zero", 0)
