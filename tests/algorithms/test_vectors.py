"""Every test vector of ALGORITHMS.md, checked against the pure functions."""
from __future__ import annotations

import pytest
import torch

from runtime.algorithms import advantages, bpgo, dpo, flow, kto, metrics, min_norm, ppo, rwr, sde, self_paced, vipo

approx = lambda x, **kw: pytest.approx(x, abs=kw.pop("abs", 1e-6), **kw)  # noqa: E731


def test_t1_group_advantages():
    r = torch.tensor([1.0, 1, 0, 0])
    assert advantages.group_advantages(r, ddof=0, eps=1e-4).tolist() == approx([0.9998, 0.9998, -0.9998, -0.9998])
    assert advantages.group_advantages(r, ddof=1, eps=1e-8).tolist() == approx([0.866025, 0.866025, -0.866025, -0.866025])
    assert advantages.group_advantages(torch.tensor([3.0, 1, 2, 2]), eps=1e-4).tolist() == \
        approx([1.414014, -1.414014, 0, 0])
    assert advantages.group_advantages(torch.full((4,), 0.5)).tolist() == [0, 0, 0, 0]
    one_hot = torch.zeros(36)
    one_hot[0] = 1
    a = advantages.group_advantages(one_hot, eps=1e-4)
    assert float(a[0]) == 5.0 and float(a[1]) == approx(-0.168928)


def test_t1_edge_cases():
    assert advantages.group_advantages(torch.tensor([2.0])).tolist() == [0.0]
    a = advantages.group_advantages(torch.tensor([[1.0, float("nan"), 0.0]]))
    assert a[0, 1] == 0 and a[0, 0] > 0 > a[0, 2]
    shifted = advantages.group_advantages(torch.tensor([3.0, 1, 2, 2]) + 10)
    assert shifted.tolist() == approx(advantages.group_advantages(torch.tensor([3.0, 1, 2, 2])).tolist(), abs=1e-5)
    mask = advantages.best_of_n_mask(torch.tensor([[0.1, -2.0, 3.0, 0.0]]), k=1)
    assert mask.tolist() == [[False, True, True, False]]


@pytest.mark.parametrize("adv,rho,loss", [(1, 1.0002, -1.0001), (-1, 1.0002, 1.0002), (1, 0.9997, -0.9997),
                                          (-1, 0.9997, 0.9999)])
def test_t2_ppo_clip(adv, rho, loss):
    logp_old = torch.zeros(1)
    got, _ = ppo.clipped_policy_loss(torch.log(torch.tensor([rho])), logp_old, torch.tensor([float(adv)]), 1e-4)
    assert float(got) == approx(loss)


def test_t3_sde_step():
    s0, s1 = 0.8, 0.6
    g = sde.noise_level("flow_grpo", s0, 0.9, a=0.7)
    assert g == approx(1.4)
    x, v, x_next = torch.ones(1, 1), torch.full((1, 1), 0.5), torch.full((1, 1), 0.7)
    mu, std = sde.sde_step_mean(x, v, s0, s1, g)
    assert float(mu) == approx(0.6305) and std == approx(0.626099)
    assert float(sde.gaussian_logprob(x_next, mu, std)) == approx(-0.456853)
    mu, std = sde.sde_step_mean(x, v, s0, s1, sde.noise_level("dance", s0, 0.9, eta=0.3))
    assert float(mu) == approx(0.887625) and std == approx(0.134164)
    assert float(sde.gaussian_logprob(x_next, mu, std)) == approx(0.111888)


def test_t3_schedule_and_step_at_s1():
    sig = flow.shifted_sigmas(4, 3.0)
    assert sig[0] == 1 and sig[-1] == 0 and bool((sig[:-1] > sig[1:]).all())
    assert float(sig[2]) == approx(3 * 0.5 / (1 + 2 * 0.5))
    assert sde.noise_level("flow_grpo", 1.0, float(sig[1]), a=0.7) > 0  # finite at s = 1


def test_t4_dpo():
    d = torch.float64  # beta = 5000 amplifies fp32 rounding of the inputs themselves
    e = [torch.tensor([v], requires_grad=True, dtype=d) for v in (0.1000, 0.1002)]
    loss = dpo.dpo_loss(e[0], e[1], torch.tensor([0.1001], dtype=d), torch.tensor([0.1001], dtype=d), beta=5000).sum()
    loss.backward()
    assert float(loss.detach()) == approx(0.474077)
    assert float(e[0].grad) == approx(943.852, abs=1e-3) and float(e[1].grad) == approx(-943.852, abs=1e-3)
    v = dpo.dpo_loss(torch.tensor([.50]), torch.tensor([.52]), torch.tensor([.51]), torch.tensor([.51]), beta=100)
    assert float(v) == approx(0.313262)


def test_t5_decoupled_weight_gives_the_exact_gradient():
    th = torch.tensor(0.2, requires_grad=True)
    beta = 2.0
    l_w, l_l = (th - 1) ** 2, (th + 1) ** 2
    loss = -torch.nn.functional.logsigmoid(beta * (l_l - l_w))
    m = float((l_l - l_w).detach())
    eta = beta * torch.sigmoid(torch.tensor(-beta * m))
    assert m == approx(0.8) and float(loss.detach()) == approx(0.183901) and float(eta) == approx(0.335963)
    (eta * l_w).backward(retain_graph=True)
    (-eta * l_l).backward()
    assert float(th.grad) == approx(-1.343853)


def test_t6_kto():
    g = torch.tensor([.004, .001, .002, -.001])
    loss = kto.kto_loss(-g, torch.zeros(4), torch.tensor([1, 1, 0, 0]), beta=1000)
    assert float(kto.kto_reference_point(g)) == approx(0.0015) and float(loss) == approx(0.349159)
    g2 = torch.tensor([.002, -.001, .0005, -.003])
    assert float(kto.kto_reference_point(g2)) == 0
    assert float(kto.kto_loss(-g2, torch.zeros(4), torch.tensor([1, 0, 1, 0]), beta=1000)) == approx(0.203278)


def test_t7_min_norm():
    assert min_norm.min_norm_two(torch.tensor([1.0, 0]), torch.tensor([0.0, 1])).tolist() == approx([0.5, 0.5])
    c = min_norm.min_norm_two(torch.tensor([1.0, 2]), torch.tensor([3.0, -1]))
    assert float(c[0]) == approx(9 / 13)
    combined = min_norm.combine([torch.tensor([1.0, 2]), torch.tensor([3.0, -1])], c)
    assert float(combined.pow(2).sum()) == approx(3.769231)
    vecs = torch.tensor([[1.0, 2], [3, -1], [-1, 1]])
    w = min_norm.min_norm_weights(vecs)
    assert w.tolist() == approx([0, 0.3, 0.7], abs=1e-3)
    assert min_norm.combine(list(vecs), w).tolist() == approx([0.2, 0.4], abs=1e-3)


def test_min_norm_is_on_the_simplex_and_no_worse_than_a_vertex():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        vecs = torch.randn(4, 6, generator=g)
        w = min_norm.min_norm_weights(vecs)
        assert float(w.sum()) == approx(1.0, abs=1e-5) and bool((w >= -1e-6).all())
        best_vertex = min(float(v.pow(2).sum()) for v in vecs)
        assert float(min_norm.combine(list(vecs), w).pow(2).sum()) <= best_vertex + 1e-5


def test_t8_t9_metrics():
    assert metrics.gsb(50, 30, 20) == approx({"win_rate": 0.714286, "preference": 0.65, "margin": 0.30})
    assert metrics.mrr([1, 3, 2]) == approx(0.611111)
    assert metrics.recall_at_k([1, 3, 2], 1) == approx(0.333333)
    assert metrics.recall_at_k([1, 3, 2], 2) == approx(0.666667)
    assert metrics.rank_with_ties([0.5, 0.9, 0.5, 0.1], 0) == (2, 3)


def test_t10_bpgo():
    assert float(bpgo.ras_weight_paper(0.7, prior=0.65, alpha=0.5, k=10)) == approx(1.122459)
    assert float(bpgo.ras_weight_paper(0.6, prior=0.65, alpha=0.5, k=10)) == approx(0.877541)
    crt = bpgo.crt_teleboost(torch.tensor([0.8, 0.6], dtype=torch.float64), 0.65, a=50, tau=5)
    # above the prior the vector applies as given; below it our CRT is monotone (docs/algorithms.md
    # §S2.2): 50 (0.6 - 0.65) sigmoid(0.65 / 5) 0.65 instead of the reference's -0.794946
    assert crt.tolist() == approx([3.671421, -0.865238])
    better = bpgo.ras_scale_teleboost(torch.tensor([0.8, 0.85, 0.9, 0.8]), prior=0.65)
    worse = bpgo.ras_scale_teleboost(torch.tensor([0.5, 0.55, 0.45, 0.5]), prior=0.65)
    assert float(better) > 1 > float(worse) >= 0.01


def test_t11_self_paced():
    comps = torch.tensor([[.8, .2], [.8, .6], [.8, .4], [.8, .8]])
    w = self_paced.self_paced_weights(comps, tau=0.75, beta=0.3)
    assert w.tolist() == approx([0.492530, 0.507470])
    assert self_paced.combine_components(comps, w).tolist() == approx([0.495518, 0.698506, 0.597012, 0.8])
    saturated = self_paced.self_paced_weights(comps, tau=0.75, beta=0.3, saturate_below=0.05)
    assert float(saturated[0]) < float(w[0])  # the constant component hands its weight on


def test_t12_vipo():
    raw = torch.tensor([[.2, .6], [1, .2]])
    assert vipo.minmax(raw).flatten().tolist() == approx([0, .5, 1, 0])
    assert vipo.dense_advantage(vipo.minmax(raw), -1.5).flatten().tolist() == approx([0, -.75, -1.5, 0])


def test_vipo_map_constant_features_give_ones_and_structure_gives_contrast():
    ones = vipo.advantage_map(torch.zeros(2, 16, 8), (4, 4), (2, 8, 8))
    assert bool((ones == 1).all())
    tokens = torch.zeros(2, 16, 8)
    tokens[:, 5, :] = 3.0  # one salient patch
    m = vipo.advantage_map(tokens + 0.01 * torch.randn(2, 16, 8, generator=torch.Generator().manual_seed(0)),
                           (4, 4), (2, 8, 8))
    assert m.shape == (2, 8, 8) and float(m.min()) == approx(0) and float(m.max()) == approx(1)


def test_t13_nrg():
    v = rwr.nrg_velocity(torch.tensor([0.1]), 0.75, 2.0, torch.tensor([0.3]))
    assert float(v) == approx(-1.7)


def test_rwr_weights_mean_one_and_tau_one_is_exp_r():
    r = torch.tensor([0.0, 1.0, 2.0])
    w = rwr.rwr_weights(r, tau=1.0)
    assert float(w.mean()) == approx(1.0)
    assert (w / w[0]).tolist() == approx(torch.exp(r).tolist(), abs=1e-5)
    clipped = rwr.rwr_weights(torch.tensor([0.0, 0.0, 5.0]), clip=1.5)
    assert float(clipped.mean()) == approx(1.0) and float(clipped.max()) < float(rwr.rwr_weights(torch.tensor([0.0, 0.0, 5.0])).max())


def test_flow_matching_error_is_per_sample_mean():
    x0, eps = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    v = torch.ones(2, 3, 4)
    assert flow.flow_matching_error(v, x0, eps).tolist() == [0.0, 0.0]
    assert flow.flow_matching_error(v * 0, x0, eps).tolist() == [1.0, 1.0]
    assert flow.noised(x0, eps, torch.tensor([0.25, 1.0]))[:, 0, 0].tolist() == [0.25, 1.0]
