"""Evaluation comparisons (ALGORITHMS.md §11): Good/Same/Bad of the policy against each baseline on the
same prompts and noise, and how well each metric ranks human-chosen videos above rejected ones."""
from __future__ import annotations

import torch

from runtime.algorithms.metrics import gsb, mrr, rank_with_ties, recall_at_k
from runtime.context import JobContext
from runtime.data.pairs import read_pairs_file
from runtime.rewards.registry import reward_for, score_reward
from runtime.rewards.vlm_judge import swap_checked_verdicts

TIE_TOLERANCE = 1e-6  # relative: scores closer than this are the same verdict


def verdicts(ctx: JobContext, judge: dict, ours: torch.Tensor, theirs: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """+1 where our video wins, -1 where it loses, 0 for the same. A pairwise judge is asked both ways
    and only consistent answers count; a pointwise reward compares scores."""
    reward = reward_for(judge, ctx)
    if getattr(reward, "pairwise", False):
        return swap_checked_verdicts(*reward.compare_both_orders(ours, theirs, prompts))
    a, b = score_reward(judge, ours, prompts, ctx), score_reward(judge, theirs, prompts, ctx)
    scale = torch.maximum(torch.ones_like(a), torch.maximum(a.abs(), b.abs()))
    return torch.where((a - b).abs() <= TIE_TOLERANCE * scale, 0, torch.sign(a - b)).long()


def good_same_bad(v: torch.Tensor) -> dict[str, float]:
    counts = {"good": int((v > 0).sum()), "same": int((v == 0).sum()), "bad": int((v < 0).sum())}
    return {**counts, **gsb(counts["good"], counts["same"], counts["bad"])}


def rank_judges(ctx: JobContext, metrics: list[tuple[str, dict]]) -> dict[str, dict[str, float]]:
    """Per metric, over the human pairs (ties dropped): MRR and Recall@1 of the human-chosen video among
    the two, with score ties counted optimistically and pessimistically."""
    cfg = ctx.config
    pairs = read_pairs_file(cfg.human_pairs, ctx.recipe_dir, cfg.frames, cfg.resolution)
    out = {}
    for name, ref in metrics:
        chosen = score_reward(ref, pairs.chosen, pairs.prompts, ctx).tolist()
        rejected = score_reward(ref, pairs.rejected, pairs.prompts, ctx).tolist()
        ranks = [rank_with_ties([c, r], 0) for c, r in zip(chosen, rejected)]
        best, worst = [r[0] for r in ranks], [r[1] for r in ranks]
        out[name] = {"pairs": len(ranks), "mrr_optimistic": mrr(best), "mrr_pessimistic": mrr(worst),
                     "recall@1_optimistic": recall_at_k(best, 1), "recall@1_pessimistic": recall_at_k(worst, 1)}
    return out
