"""The ODE/SDE sampler: determinism, per-step log-probs, their recomputation, guidance, shared noise."""
from __future__ import annotations

import pytest
import torch

from runtime.models.sampler import initial_noise, recompute_logprob, sample

from .conftest import PROMPTS, latents, load

STEPS = 4


@pytest.fixture(scope="module")
def wan(folders):
    return load(folders, "wan")


def rollout(policy, seed: int = 0, kind: str = "flow_grpo", level: float = 0.7, **kw):
    return sample(policy, policy.encode_prompts(PROMPTS), latents(policy), STEPS, kind, level,
                  torch.Generator().manual_seed(seed), **kw)


def test_sde_is_deterministic_given_the_generator(wan):
    a, b, c = rollout(wan, 0), rollout(wan, 0), rollout(wan, 1)
    assert all(torch.equal(x, y) for x, y in zip(a.states, b.states)) and torch.equal(a.logps, b.logps)
    assert not torch.allclose(a.final, c.final)


def test_trajectory_layout(wan):
    traj = rollout(wan)
    assert len(traj.states) == STEPS + 1 and len(traj.mus) == STEPS and traj.sigmas.shape == (STEPS + 1,)
    assert traj.logps.shape == (2, STEPS) and torch.isfinite(traj.logps).all()
    assert traj.stochastic_steps() == [0, 1, 2]  # the last step is deterministic: its noise would stay
    assert traj.levels[-1] == 0 and bool((traj.logps[:, -1] == 0).all())
    assert torch.equal(traj.final, traj.mus[-1])
    x, x_next, logp = traj.step(1)
    assert torch.equal(x, traj.states[1]) and torch.equal(x_next, traj.states[2])
    assert torch.equal(logp, traj.logps[:, 1])
    assert rollout(wan, deterministic_last_step=False).stochastic_steps() == [0, 1, 2, 3]


def test_ode_needs_no_generator_and_has_no_logprobs(wan):
    text, x = wan.encode_prompts(PROMPTS), latents(wan)
    a, b = sample(wan, text, x, STEPS), sample(wan, text, x, STEPS)
    assert torch.equal(a.final, b.final) and a.logps is None and a.levels == [0.0] * STEPS


def test_sde_with_vanishing_noise_tends_to_the_ode(wan):
    ode = rollout(wan, kind="ode").final
    assert not torch.allclose(rollout(wan, kind="dance", level=0.3).final, ode, atol=1e-2)
    assert torch.allclose(rollout(wan, kind="dance", level=1e-5).final, ode, atol=1e-3)


@pytest.mark.parametrize("name", ["wan", "cogvideox"])
def test_recomputed_logprob_equals_the_rollouts_under_unchanged_weights(folders, name):
    policy = load(folders, name)
    text = policy.encode_prompts(PROMPTS)
    traj = rollout(policy, kind="dance", level=0.3)
    for k in traj.stochastic_steps():
        logp, mu = recompute_logprob(policy, traj, k, text)
        assert torch.allclose(logp, traj.logps[:, k], atol=1e-5) and torch.allclose(mu, traj.mus[k], atol=1e-5)
    logp, _ = recompute_logprob(policy, traj, 1, text, rows=torch.tensor([1]))
    assert torch.allclose(logp, traj.logps[1:, 1], atol=1e-5)
    with pytest.raises(ValueError, match="deterministic"):
        recompute_logprob(policy, traj, STEPS - 1, text)


def test_recomputed_logprob_has_gradients_and_moves_with_the_weights(folders):
    policy = load(folders, "wan")
    text = policy.encode_prompts(PROMPTS)
    traj = rollout(policy)
    logp, _ = recompute_logprob(policy, traj, 0, text)
    (-logp.mean()).backward()
    torch.optim.SGD(policy.trainable_parameters(), lr=0.1).step()
    moved, _ = recompute_logprob(policy, traj, 0, text)
    assert float(moved.detach().mean()) > float(traj.logps[:, 0].mean())  # the step made the rollout more likely


def test_classifier_free_guidance(wan):
    text, uncond, x = wan.encode_prompts(PROMPTS), wan.encode_prompts([""]), latents(wan)
    plain = sample(wan, text, x, 1).final
    assert torch.equal(sample(wan, text, x, 1, guidance=1.0, uncond=uncond).final, plain)
    guided = sample(wan, text, x, 1, guidance=3.0, uncond=uncond).final
    with torch.no_grad():
        v_c = wan.velocity(x, 1.0, text)
        v_u = wan.velocity(x, 1.0, uncond.repeat(2))
    assert torch.allclose(guided, x - (v_u + 3.0 * (v_c - v_u)), atol=1e-5)


def test_initial_noise_can_be_shared_within_groups():
    shared = initial_noise(6, (3, 2, 4, 4), torch.Generator().manual_seed(0), group=3)
    assert torch.equal(shared[0], shared[2]) and not torch.equal(shared[2], shared[3])
    again = initial_noise(6, (3, 2, 4, 4), torch.Generator().manual_seed(0), group=3)
    assert torch.equal(shared, again)
    with pytest.raises(ValueError, match="groups of 4"):
        initial_noise(6, (3,), group=4)


def test_shift_comes_from_the_policy(folders):
    policy = load(folders, "wan")
    assert rollout(policy, kind="ode").sigmas[1] == pytest.approx(3 * 0.75 / (1 + 2 * 0.75))
