"""GRPO's starting noise: with shared_noise each group starts from one draw, so its rewards differ only
through the SDE's noise; without it every rollout has its own draw."""
from __future__ import annotations

import torch

from runtime.trainers.grpo import initial_noise


def draw(shared: bool) -> torch.Tensor:
    return initial_noise({"shared_noise": shared, "group_size": 4}, 12, (2, 3, 5), torch.Generator().manual_seed(0))


def test_shared_noise_repeats_one_draw_within_each_group_and_differs_across_groups():
    groups = draw(shared=True).view(3, 4, -1)
    assert torch.equal(groups, groups[:, :1].expand_as(groups))
    assert not torch.equal(groups[0, 0], groups[1, 0]) and not torch.equal(groups[1, 0], groups[2, 0])


def test_independent_noise_gives_every_rollout_its_own_draw():
    noise = draw(shared=False).flatten(1)
    assert noise.shape == (12, 30)
    assert torch.cdist(noise, noise).add(torch.eye(12)).min() > 0  # no two rows alike


def test_the_draw_is_a_function_of_the_generator():
    assert torch.equal(draw(shared=True), draw(shared=True))
    assert torch.equal(draw(shared=False), draw(shared=False))
