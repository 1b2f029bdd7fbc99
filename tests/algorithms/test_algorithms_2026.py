"""Test vectors T14-T18 (docs/algorithms.md §S3): the CPS step, GRPO-Guard's RatioNorm, the velocity
KL, Pref-GRPO's win rates and the MixGRPO window, each recomputed by hand from the papers' formulas."""
from __future__ import annotations

import math

import pytest
import torch

from runtime.algorithms import guard, sde, win_rate, window
from runtime.trainers.grpo_advantages import Scores, compute_advantages, judged_win_rates

approx = lambda x, **kw: pytest.approx(x, abs=kw.pop("abs", 1e-6), **kw)  # noqa: E731
X, V, X_NEXT = torch.ones(1, 1), torch.full((1, 1), 0.5), torch.full((1, 1), 0.7)


def test_t14_cps_step():
    # s .8 -> .6, eta .8: std = .6 sin(.4 pi) = .570634; x0 = 1 - .8 * .5 = .6, x1 = 1 + .2 * .5 = 1.1;
    # mu = .4 * .6 + sqrt(.36 - .325623) * 1.1 = .443951; log N(.7 | mu, std) = -.458602
    assert sde.noise_level("cps", 0.8, 0.9, eta=0.8) == 0.8
    mu, std = sde.cps_step_mean(X, V, 0.8, 0.6, 0.8)
    assert std == approx(0.570634) and float(mu) == approx(0.443951)
    assert float(sde.gaussian_logprob(X_NEXT, mu, std)) == approx(-0.458602)
    assert sde.step_mean("cps", X, V, 0.8, 0.6, 0.8)[1] == std  # the dispatcher the trainer uses


def test_cps_preserves_the_coefficients_of_the_noised_latent():
    """With the true velocity of x_s = (1 - s) x0 + s eps, a CPS step gives (1 - s') x0 + c eps + std z
    with c^2 + std^2 = s'^2: the next latent has exactly the next level's noise coefficient."""
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 64, generator=gen), torch.randn(4, 64, generator=gen)
    s, s_next = 0.7, 0.4
    mu, std = sde.cps_step_mean((1 - s) * x0 + s * eps, eps - x0, s, s_next, 0.6)
    c = math.sqrt(s_next ** 2 - std ** 2)
    assert torch.allclose(mu, (1 - s_next) * x0 + c * eps, atol=1e-5)
    assert c * c + std * std == approx(s_next ** 2)
    mu0, std0 = sde.cps_step_mean((1 - s) * x0 + s * eps, eps - x0, s, s_next, 0.0)  # eta 0: the Euler step
    euler, _ = sde.sde_step_mean((1 - s) * x0 + s * eps, eps - x0, s, s_next, 0.0)
    assert std0 == 0 and torch.allclose(mu0, euler, atol=1e-5)
    with pytest.raises(ValueError):
        sde.cps_step_mean(X, V, 0.8, 0.6, 1.5)


def test_t15_guard_ratio_norm():
    # T3's flow_grpo step (mu_old .6305, std .626099, x' .7) and a current mean .65 (d = .0195):
    # log rho = (.0695^2 - .05^2) / (2 std^2) = .002972; + d^2 / (2 std^2) = .000485; x std = .002165 = z d
    mu_old, std = sde.sde_step_mean(X, V, 0.8, 0.6, 1.4)
    mu_new = torch.full((1, 1), 0.65)
    lp_old, lp_new = sde.gaussian_logprob(X_NEXT, mu_old, std), sde.gaussian_logprob(X_NEXT, mu_new, std)
    assert float(lp_new - lp_old) == approx(0.002972)
    normed = guard.guard_log_ratio(lp_new, lp_old, mu_new, mu_old, std)
    assert float(normed) == approx(0.0021646)
    assert float(normed) == approx(float((X_NEXT - mu_old) / std * (mu_new - mu_old)))
    assert guard.guard_step_weight(0.8, 0.6) == approx(5.0)


def test_guard_removes_the_ratio_bias():
    """Under the rollout policy the plain log-ratio's mean is -mean(d^2)/(2 std^2) < 0; RatioNorm's is 0,
    per sample and per position (ViPO), and it equals mean(z d) exactly."""
    gen = torch.Generator().manual_seed(1)
    mu_old, d, std = torch.randn(4000, 8, generator=gen), 0.05 * torch.randn(4000, 8, generator=gen), 0.1
    z = torch.randn(4000, 8, generator=gen)
    x_next = mu_old + std * z
    plain = sde.gaussian_logprob(x_next, mu_old + d, std) - sde.gaussian_logprob(x_next, mu_old, std)
    normed = guard.guard_log_ratio(sde.gaussian_logprob(x_next, mu_old + d, std),
                                   sde.gaussian_logprob(x_next, mu_old, std), mu_old + d, mu_old, std)
    assert float(plain.mean()) == approx(-float(d.pow(2).mean()) / (2 * std ** 2), abs=2e-3)
    assert float(plain.mean()) < -0.1 and abs(float(normed.mean())) < 1e-3
    assert torch.allclose(normed, (z * d).mean(1), atol=1e-5)
    per_pos = lambda mu: -0.5 * ((x_next - mu) / std) ** 2  # noqa: E731 (constants cancel)
    assert torch.allclose(guard.guard_log_ratio(per_pos(mu_old + d), per_pos(mu_old), mu_old + d, mu_old, std),
                          z * d, atol=1e-5)


def test_t16_velocity_kl():
    v, v_ref = torch.tensor([[0.5, -0.5], [1.0, 1.0]]), torch.tensor([[0.3, -0.5], [0.0, 1.0]])
    assert guard.velocity_kl(v, v_ref).tolist() == approx([0.02, 0.5])
    mu, mu_ref = torch.tensor([[0.1]]), torch.tensor([[0.0]])
    assert float(guard.transition_kl("flow_grpo", mu, mu_ref, 1.4, 0.626099)) == approx(0.01 / (2 * 1.96))
    assert float(guard.transition_kl("cps", mu, mu_ref, 0.8, 0.5)) == approx(0.01 / 0.5)


def test_t17_win_rates():
    # r = [3, 1, 2, 2]: 3 beats all three; 1 none; each 2 beats 1, ties the other 2, loses to 3: 1.5/3
    assert win_rate.win_rates(win_rate.score_preferences(torch.tensor([[3.0, 1, 2, 2]])))[0].tolist() == \
        approx([1.0, 0.0, 0.5, 0.5])
    # a tiny gap counts as much as a large one (the z-score of [.51, .50, .50, .49] is the one of [3, 2, 2, 1])
    tiny = win_rate.win_rates(win_rate.score_preferences(torch.tensor([[0.51, 0.50, 0.50, 0.49]])))
    assert tiny[0].tolist() == approx([1.0, 0.5, 0.5, 0.0])
    nan = win_rate.win_rates(win_rate.score_preferences(torch.tensor([[float("nan"), 0.2, 0.1]])))
    assert nan[0].tolist() == approx([0.0, 1.0, 0.5])
    # a judge's both-order answers on the pairs (0,1), (0,2), (1,2): P(0>1) = (.9 + .7)/2 = .8, ...
    prefs = win_rate.judged_preferences(torch.tensor([0.9, 0.6, 0.2]), torch.tensor([0.7, 0.4, 0.4]))
    assert prefs.flatten().tolist() == approx([0.5, 0.8, 0.5, 0.2, 0.5, 0.3, 0.5, 0.7, 0.5])
    assert win_rate.win_rates(prefs)[0].tolist() == approx([0.65, 0.25, 0.6])


def test_judged_win_rates_ask_every_pair_of_each_group_both_ways():
    """The trainer's pairwise path with a position-fair judge that prefers the brighter video: the win
    rates are the brightness ranks', per group, and every pair is asked once in each order."""
    asked = []

    def compare_both_orders(a, b, prompts):
        asked.append(len(prompts))
        p = torch.sigmoid(100 * (a.mean((1, 2, 3, 4)) - b.mean((1, 2, 3, 4))))
        return p, p

    brightness = torch.tensor([0.3, 0.9, 0.1, 0.5, 0.2, 0.4, 0.8, 0.6])
    videos = brightness.view(-1, 1, 1, 1, 1).expand(8, 3, 2, 4, 4).clone()
    rates = judged_win_rates(compare_both_orders, videos, ["p"] * 8, 4)
    assert asked == [12]  # 2 groups x 6 pairs
    assert rates.tolist() == approx([1 / 3, 1.0, 0.0, 2 / 3, 0.0, 1 / 3, 1.0, 2 / 3], abs=1e-4)


CFG = {"group_size": 4, "self_paced": None, "bpgo": None, "adv_ddof": 0, "adv_eps": 1e-4, "adv_clip": 5.0,
       "global_std": False, "reward": {"kind": "sum"}, "gate_action": "zero", "best_of_n": None}


def test_win_rate_changes_the_advantages():
    """reward_as = win_rate: a group with a tiny and a large score gap gets the same advantages as a rank
    order, unlike the scores' z-score; a pre-judged head passes through unchanged."""
    r = torch.tensor([0.50, 0.49, 0.10, 0.0])
    scored, _, _ = compute_advantages({**CFG, "reward_as": "score"}, Scores.of_reward(r), ["p"] * 4, None)
    ranked, _, _ = compute_advantages({**CFG, "reward_as": "win_rate"}, Scores.of_reward(r), ["p"] * 4, None)
    expected, _, _ = compute_advantages({**CFG, "reward_as": "score"}, Scores.of_reward(torch.tensor([1.0, 2 / 3, 1 / 3, 0])),
                                        ["p"] * 4, None)
    assert torch.allclose(ranked, expected, atol=1e-5) and not torch.allclose(ranked, scored, atol=1e-2)
    judged = Scores.of_reward(torch.tensor([1.0, 2 / 3, 1 / 3, 0]))
    judged.judged = True
    again, _, _ = compute_advantages({**CFG, "reward_as": "win_rate"}, judged, ["p"] * 4, None)
    assert torch.allclose(again, expected)


def test_t18_window():
    # T = 10 sampling steps, size 2 (steps 0..8 can be SDE): slide every 3 steps by 1, stopping at 7
    starts = [window.window_start(i, 10, 2, 3, 1) for i in range(0, 30, 3)]
    assert starts == [0, 1, 2, 3, 4, 5, 6, 7, 7, 7]
    assert window.window_steps(4, 10, 2, 3, 1) == frozenset({1, 2})
    assert window.window_start(5, 10, 2, 1, 3) == 7  # stride 3: 15 clipped to the last start
    drawn = [window.window_start(i, 10, 2, 1, 1, "random", seed=0) for i in range(200)]
    assert set(drawn) == set(range(8)) and drawn == [window.window_start(i, 10, 2, 1, 1, "random", 0) for i in range(200)]
    with pytest.raises(ValueError):
        window.window_start(0, 3, 3, 1, 1)


def test_t19_nft_loss():
    # x0 .2, eps 1, s .5 -> x_s .6; v_theta .9, v_old .7, beta 1, A 2.5 of 5 -> r .75
    # v+ = .9, v- = 2 (.7) - .9 = .5; x0(v+) = .6 - .45 = .15, x0(v-) = .35; errors .05, .15 (each / itself)
    # L = .75 * .05 + .25 * .15 = .075
    from runtime.algorithms import nft

    r = nft.optimality_probability(torch.tensor([2.5, -7.0, 0.0]), 5.0)
    assert r.tolist() == approx([0.75, 0.0, 0.5])
    one = lambda x: torch.tensor([[x]])  # noqa: E731
    loss = nft.nft_loss(one(0.9), one(0.7), one(0.6), one(0.2), torch.tensor([0.5]), r[:1], 1.0)
    assert loss.tolist() == approx([0.075])
    # r = 1/2 at the sampling policy: the positive and negative pulls cancel (no gradient)
    v = torch.tensor([[0.7]], requires_grad=True)
    nft.nft_loss(v, one(0.7), one(0.6), one(0.2), torch.tensor([0.5]), torch.tensor([0.5]), 1.0).sum().backward()
    assert float(v.grad) == approx(0.0)
