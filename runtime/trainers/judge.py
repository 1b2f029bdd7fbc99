"""Judge on-policy candidates: score with every judge (averaged), then build pairs (best vs worst, or all
pairs above a margin); optionally good/normal/bad labels by score tercile for KTO."""
from __future__ import annotations

import torch

from runtime.algorithms.pairs import all_pairs, best_worst, tercile_labels
from runtime.context import JobContext
from vpolang.atomic import atomic_folder
from runtime.data.labels import LabelSet, put_labels
from runtime.data.pairs import PairSet, put_pairs
from runtime.errors import JobError
from runtime.rewards.registry import score_reward


def run(ctx: JobContext) -> None:
    cfg = ctx.config
    data = torch.load(ctx.input_path("videos") / "videos.pt", map_location="cpu")
    prompts, n, videos = data["prompts"], data["n"], data["videos"].float()
    per_video_prompts = [prompts[i] for i in data["owners"]]
    scores = torch.stack([score_reward(j, videos, per_video_prompts, ctx) for j in cfg["judges"]]).mean(0)
    if cfg["swap_check"]:
        ctx.log("swap_check: the judges are pointwise scorers; position swapping applies to pairwise judges only")
    out_p, wins, loses, meta = [], [], [], []
    for k, prompt in enumerate(prompts):
        s = scores[k * n:(k + 1) * n]
        picks = [best_worst(s)] if cfg["pick"] == "best_worst" else all_pairs(s, cfg["margin"])
        for pick in picks:
            if pick is None or float(s[pick[0]] - s[pick[1]]) <= cfg["margin"] and cfg["pick"] == "best_worst" and cfg["margin"] > 0:
                continue
            out_p.append(prompt)
            wins.append(videos[k * n + pick[0]])
            loses.append(videos[k * n + pick[1]])
            meta.append({"winner_score": float(s[pick[0]]), "loser_score": float(s[pick[1]])})
    labels = candidate_labels(prompts, n, videos, scores, per_video_prompts) if cfg.get("labels") else None
    if not out_p and labels is None:
        raise JobError(f"stage `{ctx.job.stage}` ({ctx.job.span}): the judges tied on every prompt; no pairs")
    # one artifact, whole or not at all: the pairs and (for KTO) the labels beside them
    with atomic_folder(ctx.output_path("pairs")) as tmp:
        if out_p:
            put_pairs(tmp, PairSet(out_p, torch.stack(wins), torch.stack(loses), meta=meta))
        if labels is not None:
            put_labels(tmp, labels)
    counts = {f"labels_{y}": sum(1 for v in labels.labels if v == y) for y in ("good", "normal", "bad")} if labels else {}
    ctx.metrics(1, pairs=len(out_p), score_mean=float(scores.mean()), score_std=float(scores.std()), **counts)


def candidate_labels(prompts: list[str], n: int, videos: torch.Tensor, scores: torch.Tensor,
                     per_video_prompts: list[str]) -> LabelSet:
    """Every candidate labelled good / normal / bad by its rank among its prompt's candidates."""
    labels = [y for k in range(len(prompts)) for y in tercile_labels(scores[k * n:(k + 1) * n])]
    return LabelSet(per_video_prompts, videos, labels, meta=[{"score": float(v)} for v in scores])
