"""Pref-GRPO's win rates from a real (tiny, random) Qwen2-VL pairwise judge: every pair of a group asked
in both orders, each win rate the mean of the judge's two answers over the rollout's pairs."""
from __future__ import annotations

import torch

from runtime.algorithms import win_rate
from runtime.rewards.vlm_judge import VlmJudgeReward
from runtime.trainers.grpo_advantages import judged_win_rates

from .conftest import noise_video, square_video


def test_win_rates_of_a_pairwise_judge(models):
    judge = VlmJudgeReward(models["qwen2_vl"], "Which video follows the prompt?", frames=4, pairwise=True,
                           dtype="fp32")
    group = torch.stack([square_video(frames=6, size=24, step=2.0), noise_video(frames=6, size=24),
                         square_video(frames=6, size=24, step=0.0)])
    prompts = ["a red square moving right"] * 3
    rates = judged_win_rates(judge.compare_both_orders, group, prompts, 3)
    assert rates.shape == (3,) and bool(((rates >= 0) & (rates <= 1)).all())
    assert abs(float(rates.sum()) - 1.5) < 1e-5  # P[i, j] + P[j, i] = 1: a group of G sums to G/2
    # rollout 0 against 1 and 2, each asked both ways, by hand
    p01 = 0.5 * (judge.compare(group[:1], group[1:2], prompts[:1]) + 1 - judge.compare(group[1:2], group[:1], prompts[:1]))
    p02 = 0.5 * (judge.compare(group[:1], group[2:], prompts[:1]) + 1 - judge.compare(group[2:], group[:1], prompts[:1]))
    assert abs(float(rates[0]) - float((p01 + p02) / 2)) < 1e-5
    # the judge's answers are not the score path's 0/0.5/1 comparisons
    assert not torch.allclose(rates, win_rate.win_rates(win_rate.score_preferences(rates.view(1, -1))).flatten())
