"""One GRPO update moves the policy the way its advantages say: on the rollouts it was computed from,
the log-probs of the positive-advantage samples rise relative to the negative-advantage ones, and
flipping the advantages flips that (the ratio, the sign of the loss and the recomputed step mean agree
with the sampler that stored the log-probs)."""
from __future__ import annotations

import torch

from vpolang.jobconfig import CONFIGS

from vpolang.plan import ExecutionBlock

from runtime.models.families import build_policy
from runtime.models.sampler import recompute_logprob, sample
from runtime.shapes.model import TINY_DIT
from runtime.shapes.world import prompts as shape_prompts
from runtime.trainers import grpo
from runtime.trainers.updater import TorchUpdater

SPEC = {**TINY_DIT, "layers": 1, "hidden": 32, "heads": 2, "ffn": 64}
CFG = {"lr": 1e-3, "weight_decay": 0.0, "grad_clip": 1.0, "kl": 0.0, "train_fraction": 1.0, "guidance": 1.0}


def logp_change(sign: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(change of every rollout's summed step log-probs after one update, the advantages used)."""
    torch.manual_seed(0)
    policy = build_policy(dict(SPEC), seed=0)
    prompts = [p for p in shape_prompts(4, "train", seed=0) for _ in range(4)]
    n = len(prompts)
    gen = torch.Generator().manual_seed(1)
    text = policy.encode_prompts(prompts)
    noise = torch.randn((n, *policy.latent_shape(8, 16, 16)), generator=gen)
    policy.eval()
    traj = sample(policy, text, noise, 4, "flow_grpo", 0.7, gen, rows=(slice(0, n), n))
    # half of every group wins, half loses
    advantage = sign * torch.tensor([1.0, -1.0] * (n // 2))
    steps = traj.stochastic_steps()

    def total_logp() -> torch.Tensor:
        with torch.no_grad():
            return sum(recompute_logprob(policy, traj, k, text)[0] for k in steps)

    before = total_logp()
    assert torch.allclose(before, traj.logps[:, steps].sum(1), atol=1e-5)  # recomputation = the rollout's
    policy.train()
    grpo.update(policy, TorchUpdater(policy.transformer, CONFIGS["grpo"].model_construct(**CFG)), CFG, traj, text, None, advantage,
                torch.ones(n, dtype=torch.bool), None, 1e-4, gen, slice(0, n),
                ExecutionBlock(world_size=1, optimizer="torch_adamw", rows_per_rank=n, micro_batch=n, grad_accum=1))
    policy.eval()
    return total_logp() - before, advantage


def test_one_update_raises_the_log_probs_of_positive_advantages_relative_to_negative():
    for sign in (1.0, -1.0):
        change, advantage = logp_change(sign)
        up, down = change[advantage > 0], change[advantage < 0]
        assert up.mean() > down.mean(), (sign, up, down)
        assert (up.mean() - down.mean()) > 3 * change.std() / len(change) ** 0.5, (sign, change)
        assert torch.corrcoef(torch.stack([change, advantage]))[0, 1] > 0.5, (sign, change)
