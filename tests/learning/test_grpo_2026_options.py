"""The 2026 GRPO options change what one update trains, on the shapes world's tiny DiT (docs/algorithms.md
§S3): each still moves the log-probs the way the advantages say (positive up relative to negative),
and each moves the weights differently from plain Flow-GRPO on the same rollouts' seed."""
from __future__ import annotations

import pytest
import torch

from vpolang.plan import ExecutionBlock

from runtime.models.families import build_policy
from runtime.models.sampler import recompute_logprob, sample
from runtime.shapes.model import TINY_DIT
from runtime.shapes.world import prompts as shape_prompts
from runtime.trainers import grpo, grpo_options
from runtime.trainers.common import pin_reference
from runtime.trainers.updater import TorchUpdater

SPEC = {**TINY_DIT, "layers": 1, "hidden": 32, "heads": 2, "ffn": 64}
BASE = {"lr": 1e-3, "weight_decay": 0.0, "grad_clip": 1.0, "kl": 0.0, "train_fraction": 1.0, "guidance": 1.0,
        "seed": 0, "noise": "flow_grpo", "noise_level": 0.7, "guard": False, "kl_space": "mean", "window": None}
OPTIONS = {
    "cps": {"noise": "cps", "noise_level": 0.8},
    "guard": {"guard": True},
    "window": {"window": {"size": 2, "schedule": "slide", "shift_every": 1, "stride": 1}},
    "velocity_kl": {"kl": 1.0, "kl_space": "velocity"},
}
STEPS = 4


def one_update(cfg: dict, step: int = 1):
    """(every rollout's summed step log-prob change, the advantages, the weights' change, the trajectory)."""
    torch.manual_seed(0)
    policy = build_policy(dict(SPEC), seed=0)
    if cfg["kl"] > 0:
        pin_reference(policy)
        with torch.no_grad():  # move off the reference so the KL has a gradient
            for p in policy.transformer.parameters():
                p.add_(0.02 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    prompts = [p for p in shape_prompts(2, "train", seed=0) for _ in range(4)]
    n = len(prompts)
    gen = torch.Generator().manual_seed(1)
    text = policy.encode_prompts(prompts)
    noise = torch.randn((n, *policy.latent_shape(8, 16, 16)), generator=gen)
    policy.eval()
    traj = sample(policy, text, noise, STEPS, cfg["noise"], cfg["noise_level"], gen, rows=(slice(0, n), n),
                  sde_steps=grpo_options.sde_steps(cfg, step, STEPS))
    advantage = torch.tensor([1.0, -1.0] * (n // 2))
    steps = traj.stochastic_steps()

    def total_logp() -> torch.Tensor:
        with torch.no_grad():
            return sum(recompute_logprob(policy, traj, k, text)[0] for k in steps)

    before = total_logp()
    assert torch.allclose(before, traj.logps[:, steps].sum(1), atol=1e-4)  # recomputation = the rollout's
    weights = torch.cat([p.detach().flatten().clone() for p in policy.transformer.parameters()])
    policy.train()
    grpo.update(policy, TorchUpdater(policy.transformer, cfg), cfg, traj, text, None, advantage,
                torch.ones(n, dtype=torch.bool), None, 1e-4, gen, slice(0, n),
                ExecutionBlock(world_size=1, optimizer="torch_adamw", rows_per_rank=n, micro_batch=n, grad_accum=1))
    policy.eval()
    moved = torch.cat([p.detach().flatten() for p in policy.transformer.parameters()]) - weights
    return total_logp() - before, advantage, moved, traj


@pytest.fixture(scope="module")
def baseline():
    return one_update(BASE)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_option_trains_towards_the_advantages_and_differently_from_flow_grpo(name, baseline):
    change, advantage, moved, traj = one_update({**BASE, **OPTIONS[name]})
    up, down = change[advantage > 0], change[advantage < 0]
    assert up.mean() > down.mean(), (name, up, down)
    assert moved.abs().sum() > 0
    cosine = torch.nn.functional.cosine_similarity(moved, baseline[2], dim=0)
    assert cosine < 0.999, (name, float(cosine))  # not the plain update: the option is honoured


def test_window_rollouts_are_ode_outside_the_window_and_share_their_prefix():
    """Step 1 of a window of 2 sliding every step: only steps 1 and 2 of 4 are SDE (and trained); before them the
    rollouts are ODE, so a group that shares its initial noise shares its states up to the window."""
    cfg = {**BASE, **OPTIONS["window"]}
    _, _, _, traj = one_update(cfg)
    assert traj.stochastic_steps() == [1, 2]
    assert [g > 0 for g in traj.levels] == [False, True, True, False]
    assert grpo_options.steps_per_sample(cfg, 2) == 2 and grpo_options.steps_per_sample(BASE | {"train_fraction": 0.6}, 5) == 3
    policy = build_policy(dict(SPEC), seed=0).eval()
    text = policy.encode_prompts(["a red square moving left"] * 2)
    noise = torch.randn((1, *policy.latent_shape(8, 16, 16)), generator=torch.Generator().manual_seed(3)).repeat(2, 1, 1, 1, 1)
    two = sample(policy, text, noise, STEPS, "flow_grpo", 0.7, torch.Generator().manual_seed(4),
                 sde_steps=grpo_options.sde_steps(cfg, 1, STEPS))
    assert torch.equal(two.states[1][0], two.states[1][1])  # the shared ODE prefix
    assert not torch.allclose(two.states[2][0], two.states[2][1])  # branched in the window
    # computed once per group (prefix_group): the same rollouts, the prefix's forwards halved
    calls = []
    velocity = policy.velocity
    policy.velocity = lambda x, *a, **k: calls.append(x.shape[0]) or velocity(x, *a, **k)
    once = sample(policy, text, noise, STEPS, "flow_grpo", 0.7, torch.Generator().manual_seed(4),
                  sde_steps=grpo_options.sde_steps(cfg, 1, STEPS), prefix_group=2)
    assert calls == [1, 2, 2, 2]  # step 0 (before the window) on one row for the group of two
    for a, b in zip(once.states, two.states):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert grpo_options.prefix_group({**cfg, "group_size": 2, "shared_noise": True}, slice(0, 4)) == 2
    assert grpo_options.prefix_group({**cfg, "group_size": 2, "shared_noise": False}, slice(0, 4)) == 1
    assert grpo_options.prefix_group({**cfg, "group_size": 2, "shared_noise": True}, slice(1, 3)) == 1


def test_nft_pulls_good_samples_closer_and_bad_ones_away():
    """objective = nft on ODE rollouts: one update lowers the policy's denoising error on the
    positive-advantage samples relative to the negative ones (at the levels it trained)."""
    from runtime.trainers import grpo_nft

    torch.manual_seed(0)
    policy = build_policy(dict(SPEC), seed=0)
    prompts = [p for p in shape_prompts(2, "train", seed=0) for _ in range(4)]
    n = len(prompts)
    gen = torch.Generator().manual_seed(1)
    text = policy.encode_prompts(prompts)
    noise = torch.randn((n, *policy.latent_shape(8, 16, 16)), generator=gen)
    policy.eval()
    traj = sample(policy, text, noise, STEPS, "ode")
    assert traj.logps is None  # no log-probs at all
    advantage = torch.tensor([2.0, -2.0] * (n // 2))
    probe = torch.Generator().manual_seed(7)
    eps = torch.randn((3, *traj.final.shape), generator=probe)

    def error() -> torch.Tensor:
        with torch.no_grad():
            out = 0
            for j, s in enumerate((0.3, 0.6, 0.9)):
                x_s = (1 - s) * traj.final + s * eps[j]
                out = out + (x_s - s * policy.velocity(x_s, s, text) - traj.final).pow(2).flatten(1).mean(1)
            return out

    before = error()
    cfg = {**BASE, "objective": "nft", "nft_beta": 1.0, "adv_clip": 5.0, "train_fraction": 1.0,
           "updates_per_batch": 1, "lr": 3e-3}
    policy.train()
    info = grpo_nft.update(policy, TorchUpdater(policy.transformer, cfg), cfg, traj, text, advantage,
                           torch.ones(n, dtype=torch.bool), gen, slice(0, n),
                           ExecutionBlock(world_size=1, optimizer="torch_adamw", rows_per_rank=n, micro_batch=n,
                                          grad_accum=1))
    policy.eval()
    change = error() - before
    assert info["grad_norm"] > 0 and info["nft/r_mean"] == pytest.approx(0.5)
    assert change[advantage > 0].max() < change[advantage < 0].min(), change  # every good below every bad
