"""Synthetic temporal negatives: each real video wins against a reversed, shuffled or frozen copy of itself
(TeleBoost §4.2). Runs before the DPO stage that names `synthetic(...)`."""
from __future__ import annotations

import torch

from runtime.algorithms import negatives as neg
from runtime.context import JobContext
from runtime.data.pairs import write_pairs
from runtime.data.sources import load_videos
from runtime.errors import JobError


def corrupt(video: torch.Tensor, spec, gen: torch.Generator) -> torch.Tensor | None:
    """`spec`: one typed negative of the job config (reverse, shuffle or freeze)."""
    kind = spec.kind
    if kind == "reverse":
        return neg.reverse(video, spec.min_motion)
    if float(torch.rand((), generator=gen)) >= spec.p:
        return None
    if kind == "shuffle":
        return neg.shuffle_windows(video, spec.window, 1.0, gen)
    if kind == "freeze":
        return neg.freeze(video, gen, spec.min_fraction, spec.max_fraction)
    raise JobError(f"unknown negative {kind!r}")


def run(ctx: JobContext) -> None:
    cfg = ctx.config
    prompts, videos = load_videos(cfg.videos, ctx.recipe_dir, cfg.frames, cfg.resolution,
                                  ctx.stop_event.is_set)
    gen = torch.Generator().manual_seed(cfg.seed)
    out_prompts, winners, losers, meta = [], [], [], []
    for i, (prompt, video) in enumerate(zip(prompts, videos)):
        for spec in cfg.negatives:
            bad = corrupt(video, spec, gen)
            if bad is None:
                continue
            out_prompts.append(prompt)
            winners.append(video)
            losers.append(bad)
            meta.append({"source": i, "negative": spec.kind})
    if not out_prompts:
        raise JobError("no synthetic pair could be made "
                       "(every clip was static or skipped)")
    write_pairs(ctx.output_path("pairs"), out_prompts, torch.stack(winners), torch.stack(losers), meta)
    counts = {s.kind: sum(m["negative"] == s.kind for m in meta) for s in cfg.negatives}
    ctx.log(f"made {len(out_prompts)} pairs from {len(prompts)} videos: {counts}")
    ctx.metrics(1, pairs=len(out_prompts), **{f"pairs_{k}": v for k, v in counts.items()})
