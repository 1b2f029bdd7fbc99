"""Judge on-policy candidates: score with every pointwise judge (averaged), then build pairs (best vs
worst, or all pairs above a margin); with `swap_check`, every judge that compares two videos (a VLM
judge) is asked about each pair in both orders and the pair is kept only when both orders prefer its
winner (ALGORITHMS.md §10; a pointwise score has no position, so it is swap-consistent by construction);
optionally good/normal/bad labels by score tercile for KTO."""
from __future__ import annotations

import torch

from runtime.algorithms.pairs import pick_pairs, tercile_labels
from runtime.context import JobContext
from vpolang.atomic import atomic_folder
from runtime.data.labels import LabelSet, put_labels
from runtime.data.pairs import PairSet, put_pairs
from runtime.errors import JobError
from runtime.rewards.registry import reward_for, score_reward
from runtime.rewards.vlm_judge import swap_checked_verdicts


def run(ctx: JobContext) -> None:
    cfg = ctx.config
    data = torch.load(ctx.input_path("videos") / "videos.pt", map_location="cpu")
    prompts, n, videos = data["prompts"], data["n"], data["videos"].float()
    per_video_prompts = [prompts[i] for i in data["owners"]]
    rewards = [reward_for(j, ctx) for j in cfg.judges]
    pointwise = [j for j, r in zip(cfg.judges, rewards) if not getattr(r, "pairwise", False)]
    if not pointwise or (len(pointwise) < len(rewards) and not cfg.swap_check):  # the checker's E0343
        raise JobError("a pairwise judge only verifies pairs "
                       "(swap_check = true) beside a pointwise judge that scores the candidates")
    scores = torch.stack([score_reward(j, videos, per_video_prompts, ctx) for j in pointwise]).mean(0)
    out_p, wins, loses, meta = [], [], [], []
    for k, prompt in enumerate(prompts):
        s = scores[k * n:(k + 1) * n]
        for pick in pick_pairs(s, cfg.pick, cfg.margin):
            out_p.append(prompt)
            wins.append(videos[k * n + pick[0]])
            loses.append(videos[k * n + pick[1]])
            meta.append({"winner_score": float(s[pick[0]]), "loser_score": float(s[pick[1]])})
    swap = {}
    if cfg.swap_check and out_p:
        keep = swap_consistent_pairs(rewards, torch.stack(wins), torch.stack(loses), out_p)
        swap = {"swap_checked": len(out_p), "swap_dropped": int((~keep).sum())}
        out_p, wins, loses, meta = ([x for x, k in zip(v, keep.tolist()) if k] for v in (out_p, wins, loses, meta))
    labels = candidate_labels(prompts, n, videos, scores, per_video_prompts) if cfg.labels else None
    if not out_p and labels is None:
        raise JobError("no pairs (the judges tied on every prompt, "
                       "or the swap check dropped every pair)")
    # one artifact, whole or not at all: the pairs and (for KTO) the labels beside them
    with atomic_folder(ctx.output_path("pairs")) as tmp:
        if out_p:
            put_pairs(tmp, PairSet(out_p, torch.stack(wins), torch.stack(loses), meta=meta))
        if labels is not None:
            put_labels(tmp, labels)
    counts = {f"labels_{y}": sum(1 for v in labels.labels if v == y) for y in ("good", "normal", "bad")} if labels else {}
    ctx.metrics(1, pairs=len(out_p), score_mean=float(scores.mean()), score_std=float(scores.std()), **counts, **swap)


def swap_consistent_pairs(rewards, winners: torch.Tensor, losers: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """(P,) True where every judge that compares two videos prefers the winner asked both ways round."""
    keep = torch.ones(len(prompts), dtype=torch.bool)
    for reward in rewards:
        if hasattr(reward, "compare_both_orders"):
            keep &= swap_checked_verdicts(*reward.compare_both_orders(winners, losers, prompts)) == 1
    return keep


def candidate_labels(prompts: list[str], n: int, videos: torch.Tensor, scores: torch.Tensor,
                     per_video_prompts: list[str]) -> LabelSet:
    """Every candidate labelled good / normal / bad by its rank among its prompt's candidates."""
    labels = [y for k in range(len(prompts)) for y in tercile_labels(scores[k * n:(k + 1) * n])]
    return LabelSet(per_video_prompts, videos, labels, meta=[{"score": float(v)} for v in scores])
