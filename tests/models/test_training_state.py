"""LoRA, the frozen reference, gradient checkpointing, precision, and saving/loading trained weights."""
from __future__ import annotations

import pytest
import torch

from runtime.algorithms import flow

from .conftest import PROMPTS, latents, load

SIGMA = torch.tensor([0.95, 0.4])  # both sides of the Wan 2.2 expert boundary (0.875)


def flow_loss(policy, seed: int = 0) -> torch.Tensor:
    x0 = latents(policy, seed=seed)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed + 1))
    v = policy.velocity(flow.noised(x0, eps, SIGMA), SIGMA, policy.encode_prompts(PROMPTS))
    return (v - (eps - x0)).pow(2).mean()


def train_steps(policy, steps: int = 2, lr: float = 1e-2) -> None:
    opt = torch.optim.Adam(policy.trainable_parameters(), lr=lr)
    for i in range(steps):
        flow_loss(policy, seed=i).backward()
        opt.step()
        opt.zero_grad()


def outputs(policy, transformer=None) -> torch.Tensor:
    with torch.no_grad():
        return policy.velocity(latents(policy, seed=5), SIGMA, policy.encode_prompts(PROMPTS), transformer)


@pytest.mark.parametrize("name", ["wan", "wan22", "cogvideox"])
def test_lora_trains_only_the_adapters(folders, name):
    policy = load(folders, name)
    base = {k: v.clone() for k, v in policy.transformer.state_dict().items()}
    before = outputs(policy)
    policy.add_lora(4)
    assert torch.allclose(outputs(policy), before)  # B = 0 at init: adapters change nothing yet
    trainable = dict(policy.transformer.named_parameters())
    assert policy.trainable_parameters() and all("lora_" in n for n, p in trainable.items() if p.requires_grad)
    flow_loss(policy).backward()
    assert all(p.grad is None for n, p in trainable.items() if "lora_" not in n)
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for n, p in trainable.items() if "lora_B" in n)
    train_steps(policy)
    after = policy.transformer.state_dict()
    assert all(torch.equal(after[k], v) for k, v in base.items() if k in after)  # base weights untouched
    assert not torch.allclose(outputs(policy), before, atol=1e-4)


@pytest.mark.parametrize("name", ["wan", "wan22", "cogvideox"])
def test_reference_with_adapters_disabled_is_the_base_model(folders, name):
    policy, fresh = load(folders, name), load(folders, name)
    policy.add_lora(4)
    train_steps(policy)
    with policy.reference() as ref:
        assert ref is policy.transformer  # no second copy of the weights
        assert torch.allclose(outputs(policy, ref), outputs(fresh), atol=1e-6)
    assert not torch.allclose(outputs(policy), outputs(fresh), atol=1e-4)  # adapters back on after the block


def test_lora_reference_refreshes_to_an_adapter_snapshot(folders):
    """With LoRA a refreshed reference is the policy as it was at the refresh: the base weights are
    shared, the adapters snapshotted; later training moves the policy, not the reference."""
    policy, fresh = load(folders, "wan"), load(folders, "wan")
    policy.add_lora(4)
    train_steps(policy)
    policy.refresh_reference()
    at_refresh = outputs(policy)
    with policy.reference() as ref:
        assert ref.module is policy.transformer  # the base weights are not copied
        assert torch.equal(outputs(policy, ref), at_refresh)
    train_steps(policy, lr=3e-2)
    with policy.reference() as ref:
        assert torch.equal(outputs(policy, ref), at_refresh)
    assert not torch.allclose(outputs(policy), at_refresh, atol=1e-4)
    assert not torch.allclose(at_refresh, outputs(fresh), atol=1e-4)
    saved = policy.reference_state()
    assert saved and all("lora_" in k for k in saved)
    other = load(folders, "wan")
    other.add_lora(4)
    other.load_reference_state(saved)
    other.load_trainable_state(policy.trainable_state())
    with other.reference() as ref:
        assert torch.equal(outputs(other, ref), at_refresh)


def test_full_finetune_reference_is_a_frozen_copy_until_refreshed(folders):
    policy, fresh = load(folders, "wan"), load(folders, "wan")
    with policy.reference() as ref:
        assert ref is not policy.transformer and not any(p.requires_grad for p in ref.parameters())
    train_steps(policy)
    with policy.reference() as ref:
        assert torch.allclose(outputs(policy, ref), outputs(fresh), atol=1e-6)
    policy.refresh_reference()
    with policy.reference() as ref:
        assert torch.allclose(outputs(policy, ref), outputs(policy), atol=1e-6)


def test_gradient_checkpointing_gives_the_same_gradients(folders):
    grads = []
    for checkpointing in (False, True):
        policy = load(folders, "wan")
        policy.gradient_checkpointing(checkpointing)
        policy.train()
        assert policy.transformer.is_gradient_checkpointing == checkpointing
        flow_loss(policy).backward()
        grads.append(torch.cat([p.grad.flatten() for p in policy.trainable_parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_train_mode_leaves_the_frozen_parts_in_eval(folders):
    policy = load(folders, "wan").train()
    assert policy.transformer.training
    assert not policy.text_encoder.training and not policy.codec.training


@pytest.mark.parametrize("name", ["wan", "cogvideox"])
def test_bf16_keeps_the_modules_diffusers_names_in_fp32(folders, name):
    policy = load(folders, name, dtype=torch.bfloat16)
    keep = policy.transformer._keep_in_fp32_modules or []
    for param_name, param in policy.transformer.named_parameters():
        expected = torch.float32 if any(k in param_name.split(".") for k in keep) else torch.bfloat16
        assert param.dtype == expected, param_name
    assert policy.compute_dtype == torch.bfloat16
    v32, v16 = outputs(load(folders, name)), outputs(policy)
    assert v16.dtype == torch.float32
    assert float((v16 - v32).abs().mean()) < 0.05 * float(v32.abs().mean())


def test_save_load_round_trip_full_weights(folders, tmp_path):
    policy = load(folders, "wan")
    train_steps(policy)
    policy.save(tmp_path / "policy")
    restored = load(folders, "wan")
    restored.load(tmp_path / "policy")
    assert torch.equal(outputs(restored), outputs(policy))


def test_save_load_round_trip_lora(folders, tmp_path):
    policy = load(folders, "cogvideox")
    policy.add_lora(4, alpha=8)
    train_steps(policy)
    policy.save(tmp_path / "policy")
    restored = load(folders, "cogvideox")
    restored.load(tmp_path / "policy")  # adapters are merged into the base on load
    assert restored.lora is None and all(p.requires_grad for p in restored.transformer.parameters())
    assert torch.allclose(outputs(restored), outputs(policy), atol=1e-5)


def test_a_chain_of_lora_stages_reloads_exactly(folders, tmp_path):
    """SFT with LoRA, then GRPO with new LoRA on top (its reference is the SFT policy): the second
    stage's saved folder alone rebuilds the chained weights."""
    stage1 = load(folders, "wan")
    stage1.add_lora(4)
    train_steps(stage1)
    stage1.save(tmp_path / "sft")
    stage2 = load(folders, "wan")
    stage2.load(tmp_path / "sft")
    stage2.add_lora(2)
    with stage2.reference() as ref:
        assert torch.allclose(outputs(stage2, ref), outputs(stage1), atol=1e-5)
    train_steps(stage2)
    stage2.save(tmp_path / "grpo")
    (tmp_path / "sft" / "weights.safetensors").unlink()  # the chain does not depend on the earlier folder
    stage3 = load(folders, "wan")
    stage3.load(tmp_path / "grpo")
    assert torch.allclose(outputs(stage3), outputs(stage2), atol=1e-5)


def test_load_rejects_weights_of_another_model(folders, tmp_path):
    load(folders, "cogvideox").save(tmp_path / "cog")
    with pytest.raises(KeyError, match="lacks"):
        load(folders, "wan").load(tmp_path / "cog")
