"""Stage II composes (docs/algorithms.md §S2): every pair of modifiers acting together leaves each one's
effect in the combined advantages, and CRT keeps the order of every real reward."""
from __future__ import annotations

import pytest
import torch

from runtime.algorithms import bpgo, min_norm, self_paced, vipo
from runtime.algorithms.advantages import group_advantages
from runtime.errors import JobError
from runtime.trainers.grpo_advantages import Priors, Scores, compute_advantages

G = 4
PROMPTS = ["p0"] * G + ["p1"] * G
BPGO = {"prior": "running_mean", "form": "teleboost", "alpha": 1.0, "a": 50.0, "tau": 5.0, "k": 10.0, "lam": 1.0,
        "zeta": 0.1}


def ref(name: str) -> dict:
    return {"name": name, "head": None}


SP = {"phases": [ref("b"), ref("a")], "tau": 0.75, "beta": 0.3, "saturate_below": 0.0}


def config(joint=True, balance="min_norm", bpgo_cfg=None, sp=None, gate_action="zero") -> dict:
    reward = ({"kind": "joint", "rewards": [ref("a"), ref("b")], "balance": balance, "weights": None} if joint
              else {"kind": "sum", "terms": [{"reward": ref("a"), "weight": 1.0}]})
    return {"group_size": G, "adv_ddof": 0, "adv_eps": 1e-4, "adv_clip": 5.0, "global_std": False, "reward": reward,
            "bpgo": bpgo_cfg, "self_paced": sp, "gate_action": gate_action, "best_of_n": None}


A = torch.tensor([.9, .2, .5, .4, .1, .3, .8, .6])
B = torch.tensor([.3, .7, .6, .1, .5, .9, .2, .4])
PASS = torch.tensor([True, True, False, True, True, False, True, True])


def scores(joint=True, gate=None) -> Scores:
    phases = torch.stack([B, A], dim=1)
    if joint:
        return Scores(torch.stack([A, B], dim=1), ["a", "b"], [True, True], {"a": A, "b": B}, phases, gate)
    return Scores(A.view(-1, 1), ["reward"], [True], {"a": A}, phases, gate)


def priors(*per_prompt) -> Priors:
    p = Priors(None, BPGO, None)
    p.values = {"p0": torch.tensor(per_prompt[0]), "p1": torch.tensor(per_prompt[1])}
    return p


def plain(r: torch.Tensor) -> torch.Tensor:
    return group_advantages(r.view(-1, G)).flatten()


def trusted(r: torch.Tensor, prior: list[float]) -> torch.Tensor:
    return bpgo.trust_advantages(r.view(-1, G), torch.tensor(prior), BPGO)[0].flatten()


def sp_weights() -> torch.Tensor:
    return self_paced.group_weights(torch.stack([B, A], dim=1), G, SP["tau"], SP["beta"])  # phases (b, a)


def differs(x: torch.Tensor, y: torch.Tensor) -> bool:
    return float((x - y).abs().max()) > 1e-3


def test_joint_with_bpgo_uses_each_heads_own_prior_then_min_norm():
    adv, _, info = compute_advantages(config(bpgo_cfg=BPGO), scores(), PROMPTS, priors([.3, .6], [.5, .2]))
    heads = [trusted(A, [.3, .5]), trusted(B, [.6, .2])]
    c = min_norm.min_norm_weights(torch.stack(heads))
    assert torch.allclose(adv, min_norm.combine(heads, c), atol=1e-5)
    assert info["bpgo/prior/a"] == pytest.approx(.4) and info["bpgo/prior/b"] == pytest.approx(.4)
    assert "bpgo/trust/a" in info and info["joint_weight/0"] == pytest.approx(float(c[0]), abs=1e-6)
    without_bpgo, _, _ = compute_advantages(config(), scores(), PROMPTS, None)
    summed, _, _ = compute_advantages(config(balance="sum", bpgo_cfg=BPGO), scores(), PROMPTS,
                                      priors([.3, .6], [.5, .2]))
    assert differs(adv, without_bpgo) and differs(adv, summed)


def test_joint_with_self_paced_scales_heads_before_the_balance():
    adv, _, info = compute_advantages(config(sp=SP), scores(), PROMPTS, None)
    w = sp_weights()  # columns in phase order (b, a)
    scale = 2 * w[:, [1, 0]].repeat_interleave(G, dim=0)
    heads = [plain(A) * scale[:, 0], plain(B) * scale[:, 1]]
    assert torch.allclose(adv, min_norm.combine(heads, min_norm.min_norm_weights(torch.stack(heads))), atol=1e-5)
    assert info["self_paced_weight/0"] == pytest.approx(float(w[:, 0].mean()), abs=1e-6)
    joint_only, _, _ = compute_advantages(config(), scores(), PROMPTS, None)
    sp_summed, _, _ = compute_advantages(config(balance="sum", sp=SP), scores(), PROMPTS, None)
    assert differs(adv, joint_only) and differs(adv, sp_summed) and "joint_weight/1" in info


def test_bpgo_with_self_paced_trusts_the_reward_and_the_curriculum_head():
    prior = priors([.5, .4], [.4, .6])
    adv, _, info = compute_advantages(config(joint=False, bpgo_cfg=BPGO, sp=SP), scores(False), PROMPTS, prior)
    curriculum = self_paced.curriculum_reward(torch.stack([B, A], dim=1), sp_weights())
    expected = trusted(A, [.5, .4]) + trusted(curriculum, [.4, .6])
    assert torch.allclose(adv, expected, atol=1e-5)
    assert {"bpgo/trust/reward", "bpgo/trust/self_paced", "self_paced_weight/0"} <= set(info)
    no_bpgo, _, _ = compute_advantages(config(joint=False, sp=SP), scores(False), PROMPTS, None)
    no_sp, _, _ = compute_advantages(config(joint=False, bpgo_cfg=BPGO), scores(False), PROMPTS,
                                     priors([.5], [.4]))
    assert differs(adv, no_bpgo) and differs(adv, no_sp)


MODIFIED = {
    "joint": lambda: (config(), scores(), None),
    "joint+bpgo": lambda: (config(bpgo_cfg=BPGO), scores(), priors([.3, .6], [.5, .2])),
    "joint+self_paced": lambda: (config(sp=SP), scores(), None),
    "bpgo+self_paced": lambda: (config(joint=False, bpgo_cfg=BPGO, sp=SP), scores(False), priors([.5, .4], [.4, .6])),
}


@pytest.mark.parametrize("name", sorted(MODIFIED))
@pytest.mark.parametrize("action", ["zero", "drop"])
def test_gate_with_each_modifier_keeps_the_modifiers_advantages_on_passing_samples(name, action):
    cfg, sc, prior = MODIFIED[name]()
    ungated, _, _ = compute_advantages(cfg, sc, PROMPTS, prior)
    cfg, sc, prior = MODIFIED[name]()
    sc.gate = PASS
    adv, keep, info = compute_advantages({**cfg, "gate_action": action}, sc, PROMPTS, prior)
    assert torch.allclose(adv[PASS], ungated[PASS])
    if action == "zero":
        assert bool((adv[~PASS] == 0).all()) and bool(keep.all())
    else:
        assert torch.equal(keep, PASS)
    assert info["gated_fraction"] == pytest.approx(0.25)


@pytest.mark.parametrize("name", sorted(MODIFIED))
def test_vipo_maps_multiply_the_composed_advantage_of_each_modifier(name):
    cfg, sc, prior = MODIFIED[name]()
    sc.gate = PASS
    adv, _, _ = compute_advantages(cfg, sc, PROMPTS, prior)
    maps = torch.rand(len(PROMPTS), 2, 3, 3, generator=torch.Generator().manual_seed(0)) + 0.1
    dense = vipo.dense_advantages(maps, adv)
    assert torch.allclose(dense / maps, adv.view(-1, 1, 1, 1).expand_as(maps), atol=1e-6)  # modifiers kept
    assert differs(dense, adv.view(-1, 1, 1, 1).expand_as(maps))  # the map's structure kept
    assert bool((dense[~PASS] == 0).all())  # the gate kept
    stats = vipo.map_statistics(maps)
    assert 0.1 <= stats["min"] < stats["mean"] < stats["max"] <= 1.1 and stats["std"] > 0


def test_self_paced_phases_that_are_not_the_joint_rewards_are_refused():
    sp = {**SP, "phases": [ref("a"), ref("c")]}
    with pytest.raises(JobError, match="E0340"):
        compute_advantages(config(sp=sp), scores(), PROMPTS, None)


REWARDS = torch.tensor([-1e12, -1e3, -2.0, -0.5, -1e-3, 0.0, 1e-4, 0.1, 0.6, 0.65, 0.8, 1.0, 2.0, 1e3, 1e12],
                       dtype=torch.float64)


@pytest.mark.parametrize("prior", [-3.0, 0.0, 0.65, 5.0])
def test_crt_is_monotone_over_negative_zero_positive_and_huge_rewards(prior):
    teleboost = bpgo.crt_teleboost(REWARDS, prior)
    paper = bpgo.crt_paper(REWARDS, prior)
    assert bool((teleboost[1:] > teleboost[:-1]).all()) and bool(torch.isfinite(teleboost).all())
    assert bool((paper[1:] >= paper[:-1]).all()) and bool(torch.isfinite(paper).all())
    assert bool((paper[REWARDS < 30][1:] > paper[REWARDS < 30][:-1]).all())  # strict below the exp clamp


def test_crt_no_longer_reverses_negative_rewards():
    # the reference formula gives CRT(-2) = 80.3 > CRT(1) = 28.0 at prior 0
    crt = bpgo.crt_teleboost(torch.tensor([-2.0, 1.0]), 0.0)
    assert float(crt[0]) < 0 < float(crt[1])
    group = torch.tensor([[-2.0, -1.0, 0.5, 1.0]])
    adv, trust = bpgo.trust_advantages(group, torch.tensor([0.0]), BPGO)
    assert torch.equal(adv.argsort(), group.argsort()) and float(trust) > 0


def test_logit_heads_are_squashed_before_bpgo():
    logits = torch.tensor([[-40.0, 3.0], [0.0, 0.5], [40.0, 1.0]])
    u = bpgo.squash_unbounded(logits, [False, True])
    assert torch.allclose(u[:, 0], torch.sigmoid(logits[:, 0])) and torch.equal(u[:, 1], logits[:, 1])
    sc = Scores(torch.tensor([-30.0, -5.0, 2.0, 60.0] * 2).view(-1, 1), ["vq"], [False], {})
    cfg = config(joint=False, bpgo_cfg=BPGO)
    adv, _, info = compute_advantages(cfg, sc, PROMPTS, priors([0.0], [1.0]))
    assert bool(torch.isfinite(adv).all()) and torch.equal(adv[:G].argsort(), torch.arange(G))
    assert info["bpgo/prior/vq"] == pytest.approx(0.5)  # logged in the head's own (logit) units


def test_a_flat_head_does_not_zero_the_min_norm_balance():
    # a reward constant over the batch has all-zero advantages: min-norm over it would always be 0
    flat = Scores(torch.stack([A, torch.full_like(A, .5)], dim=1), ["a", "b"], [True, True], {})
    adv, _, info = compute_advantages(config(), flat, PROMPTS, None)
    assert torch.allclose(adv, plain(A), atol=1e-6)
    assert info["joint_weight/0"] == 1.0 and info["joint_weight/1"] == 0.0
    none = Scores(torch.full((8, 2), .5), ["a", "b"], [True, True], {})
    assert bool((compute_advantages(config(), none, PROMPTS, None)[0] == 0).all())
