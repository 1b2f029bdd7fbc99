"""Diffusion-KTO on pointwise labels (ALGORITHMS.md §8; IPO eq. 4 and 6).

Each video's implicit reward is g = e_ref - e_theta (how much better the policy denoises it than the
reference, same noise and timestep for both); the reference point is the global batch's mean g,
clamped at 0 and detached. Labels come from a labels file or from on-policy candidates the judge ranked
(good and normal desirable, bad not; numeric scores split at `threshold`)."""
from __future__ import annotations

import torch

from runtime.algorithms import flow
from runtime.algorithms.kto import kto_loss, kto_reference_point
from runtime.context import JobContext
from runtime.data.errors import DataError
from runtime.data.sources import load_labels, load_videos
from runtime.errors import JobError

from .common import (Loop, batch_indices, encode_cached, load_policy, pin_reference, policy_updater, real_nll_step,
                     save_policy, step_generator, total_steps)
from .parallel import gather_rows, mean_over_ranks, micro_batches, share


def desirable(ctx: JobContext, labels) -> torch.Tensor:
    threshold = ctx.config.threshold
    numeric = [y for y in labels.labels if not isinstance(y, str)]
    if numeric and threshold is None:
        raise JobError("the labels are numeric scores; set `threshold` "
                       "to the score from which a video is desirable")
    y = labels.desirable(threshold)
    if bool(y.all()) or not bool(y.any()):
        which = "desirable" if bool(y.all()) else "undesirable"
        raise JobError(f"every labelled video is {which}; KTO needs both "
                       "kinds to move away from the reference point")
    return y


def run(ctx: JobContext) -> None:
    cfg = ctx.config
    ctx.seed_everything()
    policy = load_policy(ctx)
    try:
        labels = load_labels(cfg.labels, ctx.recipe_dir, cfg.frames, cfg.resolution, ctx.input_path)
    except DataError as exc:
        raise JobError(str(exc)) from exc
    y = desirable(ctx, labels)
    latents = torch.cat([policy.encode_video(labels.videos[i:i + 32].to(ctx.device))
                         for i in range(0, len(labels), 32)])
    real = None
    if cfg.nll_real > 0:
        if cfg.real is None:
            raise JobError("`nll_real` needs `real` videos")
        real_prompts, real_videos = load_videos(cfg.real, ctx.recipe_dir, cfg.frames, cfg.resolution,
                                                ctx.stop_event.is_set)
        real = (real_prompts, policy.encode_video(real_videos.to(ctx.device)))
    steps = total_steps(cfg, len(labels))
    cache: dict = {}
    shift = policy.spec["shift"]
    pin_reference(policy)  # the starting weights, also after a resume
    updater = policy_updater(ctx, policy)

    def errors(x0, eps, s, text, transformer=None):
        return flow.flow_matching_error(policy.velocity(flow.noised(x0, eps, s), s, text, transformer), x0, eps)

    def step(i: int) -> dict[str, float]:
        idx = batch_indices(len(labels), cfg.batch, i, cfg.seed)
        gen = step_generator(cfg.seed, i)
        eps = torch.randn((len(idx), *latents.shape[1:]), generator=gen)
        s = flow.sample_sigmas(len(idx), gen, shift)
        mine = share(ctx, len(idx))
        idx, eps, s = idx[mine], eps[mine].to(latents.device), s[mine].to(latents.device)
        x0, y_batch = latents[idx.to(latents.device)], y[idx].to(latents.device)
        text = encode_cached(policy, [labels.prompts[j] for j in idx], cache)
        parts = micro_batches(ctx, len(idx))
        with torch.no_grad(), policy.reference() as ref:
            e_ref = torch.cat([errors(x0[p], eps[p], s[p], text.index(p), ref) for p in parts])
        if len(parts) == 1:  # one pass: the reference point comes from the pass that back-propagates
            e_theta = errors(x0, eps, s, text)
            g = (e_ref - e_theta).detach()
        else:  # the reference point needs every row's g before any row's loss: a no-grad pass first
            with torch.no_grad():
                g = e_ref - torch.cat([errors(x0[p], eps[p], s[p], text.index(p)) for p in parts])
        kl = kto_reference_point(gather_rows(g), all_reduce_mean=lambda m: m)  # global batch, every rank alike
        loss = 0.0
        for p in parts:  # gradient accumulation: each micro-batch adds its share of the mean loss
            e = e_theta if len(parts) == 1 else errors(x0[p], eps[p], s[p], text.index(p))
            part_loss = kto_loss(e, e_ref[p], y_batch[p], cfg.beta, cfg.utility, cfg.lambda_desirable,
                                 cfg.lambda_undesirable, reference_point=kl) * ((p.stop - p.start) / len(idx))
            updater.backward(part_loss)
            loss += float(part_loss.detach())
        values = {"loss": mean_over_ranks(float(loss)), "kl": float(kl)}
        values.update(reward_by_label(gather_rows(g), gather_rows(y_batch.float())))
        if real is not None:
            values["nll_real"] = real_nll_step(ctx, policy, updater, real, i, cache)
        values["grad_norm"] = updater.step()
        return values

    if Loop(ctx, policy, updater, steps).run(step):
        save_policy(ctx, policy, updater)


def reward_by_label(g: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Mean implicit reward of the batch's desirable and undesirable videos (when it has any)."""
    out = {}
    for name, mask in (("reward_desirable", y > 0.5), ("reward_undesirable", y <= 0.5)):
        if bool(mask.any()):
            out[name] = float(g[mask].mean())
    return out


run.distributed = True  # data parallel: the reference point is taken over the gathered global batch
