"""GRPO's reward -> advantage composition (docs/algorithms.md §S2, spec/language.md §7.5).

Every combination of `reward = joint(...)`, `gate`, `with bpgo`, `with self_paced` and `with vipo` runs
the same steps, each a pure function of runtime/algorithms, none discarding another:

  0. win rate  with reward_as = win_rate (Pref-GRPO), each head becomes its in-group win rate
  1. heads     the reward's heads: joint's rewards, or the sum's total (+ the curriculum reward when
               self_paced's phases are not the joint's rewards)
  2. curriculum self-paced weights per group; under joint they scale each head's advantage (x K)
  3. per head  group advantage, or with bpgo: squash logit heads, CRT against the head's prior, RAS trust
  4. balance   min-norm (or fixed weights, or sum) over the per-head advantages
  5. gate      zero / drop the samples that fail it
  6. maps      with vipo, the update multiplies each sample's scalar advantage by its map (grpo.update)

Each step's effect is returned as metrics."""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch

from runtime.algorithms import advantages as adv_fn
from runtime.algorithms import bpgo, min_norm, self_paced, win_rate
from runtime.context import JobContext
from runtime.errors import JobError
from runtime.models.sampler import Guidance, sample_guided
from runtime.rewards.registry import gate_mask, label, reward_for, score_expression, score_references

from .common import policy_from_ref
from .parallel import gather_rows

PRIOR_SAMPLES = 4  # videos the prior policy samples per prompt (once, cached)


@dataclass
class Scores:
    """What the rewards said about a batch of rollouts: the reward's heads (joint's rewards, or the
    sum's total), whether each head is bounded, each term (for logging), the self-paced phases, and
    the gate's verdict."""

    heads: torch.Tensor  # (N, K)
    labels: list[str]
    bounded: list[bool]
    terms: dict[str, torch.Tensor]
    phases: torch.Tensor | None = None  # (N, J)
    gate: torch.Tensor | None = None  # (N,) True where a sample passes
    phases_bounded: bool = True
    judged: bool = False  # the heads are already a pairwise judge's win rates (reward_as = win_rate)

    @classmethod
    def of_reward(cls, reward: torch.Tensor, name: str = "reward") -> "Scores":
        """A single bounded reward (benchmarks and tests that score rollouts themselves)."""
        return cls(reward.float().view(-1, 1), [name], [True], {name: reward})

    def gathered(self) -> "Scores":
        """Every rank's rows, in global order (the whole batch's statistics need all of them)."""
        return Scores(gather_rows(self.heads), self.labels, self.bounded,
                      {k: gather_rows(v) for k, v in self.terms.items()},
                      None if self.phases is None else gather_rows(self.phases),
                      None if self.gate is None else gather_rows(self.gate), self.phases_bounded, self.judged)


def score_rollouts(cfg: dict, videos, prompts, ctx) -> Scores:
    """Scores of this rank's rollouts: every head, phase and gate (nothing combined yet). The rewards of
    one call run as the plan's execution block says (serial, or concurrent threads on a GPU)."""
    expr = cfg["reward"]
    mode = ctx.execution.reward_execution
    judge = pairwise_reward(cfg, ctx)
    if judge is not None:  # Pref-GRPO with a pairwise judge: its verdicts on every pair of each group
        rates = judged_win_rates(judge.compare_both_orders, videos, prompts, cfg["group_size"])
        heads, labels, bounded = rates.view(-1, 1), ["reward"], [True]
        scored = {"terms": {label(expr["terms"][0]["reward"]): rates}}
    elif expr["kind"] == "joint":
        scored = score_expression(expr, videos, prompts, ctx, mode)
        refs = expr["rewards"]
        heads, labels = torch.stack(scored["joint"], dim=1), [label(r) for r in refs]
        bounded = [reward_for(r, ctx).bounded for r in refs]
    else:
        scored = score_expression(expr, videos, prompts, ctx, mode)
        heads, labels = scored["total"].float().view(-1, 1), ["reward"]
        bounded = [all(reward_for(t["reward"], ctx).bounded for t in expr["terms"])]
    phases, phases_bounded = None, True
    if cfg["self_paced"]:
        refs = cfg["self_paced"]["phases"]
        phases = torch.stack(score_references(refs, videos, prompts, ctx, mode), dim=1)
        phases_bounded = all(reward_for(r, ctx).bounded for r in refs)
    gate = gate_mask(cfg["gate"], videos, prompts, ctx) if cfg["gate"] else None
    return Scores(heads.float(), labels, bounded, scored["terms"], phases, gate, phases_bounded, judge is not None)


def pairwise_reward(cfg: dict, ctx):
    """The stage's pairwise judge when it is the whole reward under `reward_as = win_rate` (the only
    place the checker lets one score a GRPO stage, E0316), else None."""
    expr = cfg["reward"]
    if cfg.get("reward_as") != "win_rate" or expr["kind"] != "sum" or len(expr["terms"]) != 1:
        return None
    reward = reward_for(expr["terms"][0]["reward"], ctx)
    return reward if getattr(reward, "pairwise", False) else None


def judged_win_rates(compare_both_orders, videos: torch.Tensor, prompts: list[str], group_size: int) -> torch.Tensor:
    """(N,) win rates of this rank's rollouts from a pairwise judge asked about every pair of each group,
    both orders (`compare_both_orders(a, b, prompts) -> (P(a better) asked (a, b), asked (b, a))`)."""
    n = videos.shape[0]
    if n % group_size:
        raise JobError(f"a pairwise judge's win rates need whole groups on each process: {n} rollouts here, groups "
                       f"of {group_size} (choose a batch whose groups divide over the processes)")
    pairs = torch.combinations(torch.arange(group_size), 2)
    starts = torch.arange(0, n, group_size)
    first = (starts.view(-1, 1) + pairs[:, 0]).flatten()
    second = (starts.view(-1, 1) + pairs[:, 1]).flatten()
    p_ab, p_swapped = compare_both_orders(videos[first], videos[second], [prompts[i] for i in first.tolist()])
    per_group = len(pairs)
    rates = [win_rate.win_rates(win_rate.judged_preferences(p_ab[g * per_group:(g + 1) * per_group],
                                                            p_swapped[g * per_group:(g + 1) * per_group]))
             for g in range(len(starts))]
    return torch.cat(rates, dim=1).flatten() if rates else torch.zeros(0)


@dataclass
class Heads:
    """The heads that get their own advantage, and the self-paced multiplier of each (ones without)."""

    values: torch.Tensor  # (N, K)
    labels: list[str]
    bounded: list[bool]
    scale: torch.Tensor  # (N, K)
    curriculum: torch.Tensor | None  # (num_groups, J) self-paced weights


def stage_heads(cfg: dict, scores: Scores, group_size: int) -> Heads:
    """Step 1-2: under joint with the phases being its rewards, the curriculum weights the heads (each
    head's advantage x K w_k, mean 1); otherwise the curriculum reward sum_j w_j r_j is one more head."""
    ones = torch.ones_like(scores.heads)
    sp = cfg["self_paced"]
    if sp is None:
        return Heads(scores.heads, scores.labels, scores.bounded, ones, None)
    w = self_paced.group_weights(scores.phases, group_size, sp["tau"], sp["beta"], sp["saturate_below"])
    phase_labels = [label(r) for r in sp["phases"]]
    if cfg["reward"]["kind"] == "joint":
        if sorted(phase_labels) != sorted(scores.labels):
            raise JobError(f"self_paced phases {phase_labels} are not the joint's rewards {scores.labels} "
                           "(the checker rejects this recipe: E0340)")
        order = [phase_labels.index(h) for h in scores.labels]
        scale = len(order) * w[:, order].repeat_interleave(group_size, dim=0)
        return Heads(scores.heads, scores.labels, scores.bounded, scale, w)
    values = torch.cat([scores.heads, self_paced.curriculum_reward(scores.phases, w).view(-1, 1)], dim=1)
    return Heads(values, scores.labels + ["self_paced"], scores.bounded + [scores.phases_bounded],
                 torch.ones_like(values), w)


class Priors:
    """BPGO's per-prompt prior of every head: a running mean of the prompt's group means, or the heads of
    a prior policy (e.g. the SFT stage) on the same prompt, sampled once and cached."""

    def __init__(self, ctx: JobContext, bpgo_cfg: dict, head_values):
        self.ctx, self.cfg, self.head_values = ctx, bpgo_cfg, head_values
        self.values: dict[str, torch.Tensor] = {}
        self.prior_policy = None if bpgo_cfg["prior"] == "running_mean" else policy_from_ref(ctx, bpgo_cfg["prior"])

    def lookup(self, prompts: list[str], group_means: torch.Tensor) -> torch.Tensor:
        """(num_groups, K) priors of the groups' prompts; a prompt first seen takes its group mean."""
        for prompt, mean in zip(prompts, group_means):
            if prompt not in self.values:
                self.values[prompt] = mean.clone() if self.prior_policy is None else self._sample_prior(prompt)
        return torch.stack([self.values[p] for p in prompts])

    def update(self, prompts: list[str], group_means: torch.Tensor) -> None:
        if self.prior_policy is None:
            for prompt, mean in zip(prompts, group_means):
                self.values[prompt] = 0.9 * self.values.get(prompt, mean) + 0.1 * mean

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The per-prompt priors so far: a running mean is history a resumed run cannot recompute."""
        return {prompt: value.clone() for prompt, value in self.values.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.values = {prompt: value.clone() for prompt, value in state.items()}

    def _sample_prior(self, prompt: str) -> torch.Tensor:
        cfg = self.ctx.config
        pol = self.prior_policy
        # a stable seed per prompt (Python's hash() is salted per process: resumes and ranks would differ)
        gen = torch.Generator().manual_seed(zlib.crc32(prompt.encode()))
        shape = (PRIOR_SAMPLES, *pol.latent_shape(cfg.frames, *cfg.resolution))
        prompts = [prompt] * PRIOR_SAMPLES
        noise = torch.randn(shape, generator=gen).to(self.ctx.device)
        # sampled as the trainer's rollouts are: with the stage's guidance
        videos = pol.decode(sample_guided(pol, pol.encode_prompts(prompts), noise, cfg.sample_steps,
                                          Guidance.grpo(cfg)).final)
        return self.head_values(videos, prompts).mean(0)


def prior_head_values(cfg: dict, ctx: JobContext):
    """The heads of a few videos of one prompt, as the trainer's own rollouts would get them."""
    return lambda videos, prompts: stage_heads(cfg, score_rollouts(cfg, videos, prompts, ctx), len(prompts)).values


def head_advantage(cfg: dict, values: torch.Tensor, prior: torch.Tensor | None, bounded: bool):
    """Step 3 for one head: (N,) values -> (N,) advantages and (num_groups,) trust weights (None
    without bpgo). BPGO compares rewards with the prior on a bounded scale (logit heads squashed)."""
    g = cfg["group_size"]
    if prior is None:
        return adv_fn.group_advantages(values.view(-1, g), cfg["adv_ddof"], cfg["adv_eps"], cfg["adv_clip"],
                                       cfg["global_std"]).flatten(), None
    u = bpgo.squash_unbounded(values.view(-1, 1), [bounded]).view(-1, g)
    p = bpgo.squash_unbounded(prior.view(-1, 1), [bounded]).flatten()
    adv, trust = bpgo.trust_advantages(u, p, cfg["bpgo"], cfg["adv_ddof"], cfg["adv_eps"], cfg["adv_clip"])
    return adv.flatten(), trust


def compute_advantages(cfg: dict, scores: Scores, prompts: list[str], priors: Priors | None):
    """Advantages of the whole batch (every rank computes the same ones from the gathered scores), the
    mask of samples in the loss, and each step's effect as metrics."""
    g = cfg["group_size"]
    info = reward_metrics(scores)
    scores = as_win_rates(cfg, scores)
    heads = stage_heads(cfg, scores, g)
    group_prompts = prompts[::g]
    group_means = heads.values.view(-1, g, heads.values.shape[1]).mean(1)
    prior_tab = priors.lookup(group_prompts, group_means) if priors is not None else None
    per_head = []
    for k, name in enumerate(heads.labels):
        a, trust = head_advantage(cfg, heads.values[:, k], None if prior_tab is None else prior_tab[:, k],
                                  heads.bounded[k])
        per_head.append(a * heads.scale[:, k])
        if trust is not None:
            info[f"bpgo/trust/{name}"] = float(trust.mean())
            info[f"bpgo/prior/{name}"] = float(prior_tab[:, k].mean())
    stacked = torch.stack(per_head)
    reward = cfg["reward"]
    joint = reward["kind"] == "joint"
    weights = min_norm.balance_weights(stacked, reward["balance"] if joint else "sum",
                                       reward["weights"] if joint else None)
    advantage = min_norm.combine(per_head, weights)
    advantage, keep = adv_fn.apply_gate(advantage, scores.gate, cfg["gate_action"])
    if cfg["best_of_n"]:
        keep &= adv_fn.best_of_n_mask(advantage.view(-1, g), cfg["best_of_n"]).flatten()
    if priors is not None:
        priors.update(group_prompts, group_means)
    info.update(modifier_metrics(heads, weights, scores.gate))
    info["adv_abs_mean"] = float(advantage.abs().mean())
    grouped = heads.values.view(-1, g, heads.values.shape[1])  # groups whose rollouts all scored alike teach nothing
    info["zero_std_groups"] = float((grouped.amax(1) == grouped.amin(1)).all(-1).float().mean())
    return advantage, keep, info


def as_win_rates(cfg: dict, scores: Scores) -> Scores:
    """Step 0 (`reward_as = win_rate`, Pref-GRPO): each head becomes the rollouts' win rates within their
    group, from score comparisons (a pairwise judge's heads already are); nothing else changes."""
    if cfg.get("reward_as") != "win_rate" or scores.judged:
        return scores
    g = cfg["group_size"]
    rates = [win_rate.win_rates(win_rate.score_preferences(scores.heads[:, k].view(-1, g))).flatten()
             for k in range(scores.heads.shape[1])]
    return Scores(torch.stack(rates, dim=1), scores.labels, [True] * len(rates), scores.terms, scores.phases,
                  scores.gate, scores.phases_bounded, True)


def reward_metrics(scores: Scores) -> dict[str, float]:
    info = {f"reward/{k}": float(v.mean()) for k, v in scores.terms.items()}
    r = scores.heads.mean(1)
    info["reward_mean"], info["reward_std"] = float(r.mean()), float(r.std()) if r.numel() > 1 else 0.0
    return info


def modifier_metrics(heads: Heads, weights: torch.Tensor, gate: torch.Tensor | None) -> dict[str, float]:
    """The balance's weight of each head, the mean self-paced weight of each phase, the gate's verdict."""
    info = {}
    if len(heads.labels) > 1:
        info.update({f"joint_weight/{i}": float(w) for i, w in enumerate(weights)})
    if heads.curriculum is not None:
        info.update({f"self_paced_weight/{j}": float(w) for j, w in enumerate(heads.curriculum.mean(0))})
    if gate is not None:
        info["gate_pass"] = float(gate.float().mean())
        info["gated_fraction"] = 1.0 - info["gate_pass"]
    return info
