"""Flow-NRG sampling: without weight it is the plain ODE sampler; with weight it raises the guiding
reward of the samples (same noise); a reward without gradients is refused with a reason."""
from __future__ import annotations

import pytest
import torch

from runtime.errors import JobError
from runtime.models.families import build_policy
from runtime.models.guidance import sample_with_nrg
from runtime.models.sampler import sample
from runtime.rewards.registry import build_reward
from runtime.shapes.model import TINY_DIT


def tiny_policy():
    spec = {**TINY_DIT, "layers": 1, "hidden": 32, "heads": 2, "ffn": 64}
    return build_policy(spec, seed=0).requires_grad_(False)


def weight_free(metric: str):
    return build_reward({"name": metric, "spec": {"kind": "weight_free", "metric": metric, "resize": 64}})


@pytest.fixture(scope="module")
def setup():
    policy = tiny_policy()
    prompts = ["a red square moving up on a black background"] * 6
    noise = torch.randn((6, *policy.latent_shape(8, 16, 16)), generator=torch.Generator().manual_seed(0))
    return policy, prompts, policy.encode_prompts(prompts), noise


def test_zero_weight_is_the_plain_sampler(setup):
    policy, prompts, text, noise = setup
    plain = sample(policy, text, noise, 4).final
    guided = sample_with_nrg(policy, text, noise, 4, weight_free("sharpness"), None, prompts, weight=1e-12)
    torch.testing.assert_close(guided, plain, rtol=1e-5, atol=1e-6)


def test_guidance_raises_the_guiding_reward(setup):
    policy, prompts, text, noise = setup
    reward = weight_free("sharpness")
    plain = reward(policy.decode(sample(policy, text, noise, 4).final), prompts)["sharpness"]
    latents = sample_with_nrg(policy, text, noise, 4, reward, None, prompts, weight=0.05)
    guided = reward(policy.decode(latents), prompts)["sharpness"]
    assert bool((guided > plain).all()), (plain, guided)


def test_a_reward_without_gradients_is_refused(setup):
    policy, prompts, text, noise = setup
    with pytest.raises(JobError, match="not differentiable"):
        sample_with_nrg(policy, text, noise, 2, weight_free("dynamic_degree"), None, prompts, weight=1.0)
