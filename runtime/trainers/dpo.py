"""Flow-DPO with IPO regularisers, online pairs, reference refresh and decoupled backward (§6-7, §10).

Winner and loser of a pair share noise and timestep. Errors are per-sample velocity MSEs; the
reference runs under no_grad (adapters disabled with LoRA, else a frozen copy)."""
from __future__ import annotations

import torch

from runtime.algorithms import flow
from runtime.algorithms.dpo import beta_at, dpo_backward
from runtime.algorithms.pairs import pick_pairs
from runtime.context import JobContext
from runtime.data.pairs import read_pairs, read_pairs_file
from runtime.data.sources import load_prompts, load_videos
from runtime.data.video import resample
from runtime.errors import JobError
from runtime.models.sampler import Guidance, sample_guided
from runtime.rewards.registry import score_references

from .common import (Loop, ReferenceState, batch_indices, encode_cached, load_policy, pin_reference, policy_updater,
                     real_nll_step, save_policy, step_generator, total_steps, unsupported)
from .parallel import mean_over_ranks, micro_batches, share

# `decoupled` runs the stashed schedule pair by pair: one branch's activations alive at a time, no extra
# forward (H100, Wan2.1-1.3B, 17 frames: 0.60x peak memory at 1.04x step time; bench/results).
BACKWARD_MODE = {"standard": "standard", "decoupled": "stashed"}


def offline_pairs(ctx: JobContext, source) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Every non-online source (typed, of the job config) as (prompts, winner pixels, loser pixels); a
    mix concatenates them."""
    cfg = ctx.config
    if source.kind == "mix":
        parts = [offline_pairs(ctx, s) for s in source.sources]
        return (sum((p[0] for p in parts), []), torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts]))
    if source.kind in ("synthetic", "on_policy"):
        return read_pairs(ctx.input_path(source.input))
    if source.kind == "pairs":
        return read_pairs_file(source, ctx.recipe_dir, cfg.frames, cfg.resolution)
    raise JobError(f"pairs of kind {source.kind} are not offline")


def low_resolution(policy, frames: int, resolution: list[int]) -> tuple[int, tuple[int, int]]:
    """TeleBoost §4.3's cheap preference batches: about half the side and half the duration, on the
    VAE's stride and the patch grid (never below one latent patch)."""
    _, sh, sw = policy.codec.stride
    _, ph, pw = policy.spec["patch"]
    h, w = (max(m, (side // 2) // m * m) for side, m in zip(resolution, (sh * ph, sw * pw)))
    for f in range(max(1, (frames + 1) // 2), 0, -1):
        try:
            policy.latent_shape(f, h, w)
            return f, (h, w)
        except ValueError:
            continue
    return frames, (h, w)


def encode_at(policy, videos: torch.Tensor, frames: int, size: tuple[int, int]) -> torch.Tensor:
    """Latents of pixel videos brought to `frames` x `size` first (exact where they already match)."""
    if (videos.shape[1], tuple(videos.shape[-2:])) != (frames, tuple(size)):
        videos = torch.stack([resample(v, frames, size) for v in videos])
    return torch.cat([policy.encode_video(videos[i:i + 32]) for i in range(0, len(videos), 32)])


def run(ctx: JobContext) -> None:
    cfg = ctx.config
    online = cfg.pairs.kind == "online"
    if online and ctx.world_size > 1:
        unsupported(ctx, "online pairs on several processes",
                    "each rank would keep a different number of judged pairs; place the stage on one GPU")
    if cfg.reference.kind == "refresh" and cfg.lora_rank and ctx.execution.zero_stage == 3:
        unsupported(ctx, "reference = refresh(...) with LoRA under zero_stage = 3", "ZeRO-3's hooks cannot run "
                    "the adapter snapshot the reference becomes; use zero_stage <= 2")
    if cfg.mixed_resolution and online:
        unsupported(ctx, "mixed_resolution with online pairs", "online candidates are sampled at the stage's "
                    "resolution; use offline, synthetic or on-policy pairs, or remove the field")
    ctx.seed_everything()
    policy = load_policy(ctx)
    if online:
        prompts_pool = load_prompts(cfg.pairs.prompts, ctx.recipe_dir)
        n_pairs = len(prompts_pool)
    else:
        ctx.activity("loading pairs")
        prompts, wins, loses = offline_pairs(ctx, cfg.pairs)
        ctx.activity("encoding pairs")
        sizes = [(cfg.frames, tuple(cfg.resolution))]
        if cfg.mixed_resolution:
            sizes.append(low_resolution(policy, cfg.frames, cfg.resolution))
            ctx.log(f"mixed resolution: odd steps at {sizes[1][0]} frames of {sizes[1][1][0]}x{sizes[1][1][1]}")
        latent_sets = [(encode_at(policy, wins, *size), encode_at(policy, loses, *size)) for size in sizes]
        n_pairs = len(prompts)
    real = None
    if cfg.nll_real > 0:
        real_prompts, real_videos = load_videos(cfg.real, ctx.recipe_dir, cfg.frames, cfg.resolution,
                                                ctx.stop_event.is_set)
        real = (real_prompts, policy.encode_video(real_videos.to(ctx.device)))
    ctx.activity("training")
    steps = total_steps(cfg, n_pairs)
    refresh = cfg.reference.every if cfg.reference.kind == "refresh" else None
    cache: dict = {}
    shift = policy.spec["shift"]
    pin_reference(policy)  # the starting weights, also after a resume
    updater = policy_updater(ctx, policy)
    mode = BACKWARD_MODE[cfg.backward]
    if mode == "stashed" and not updater.reads_gradients:
        mode = "winner_first"  # ZeRO-2/3 partition the gradients the stashed schedule combines

    def errors(x0, eps, s, text, transformer=None):
        return flow.flow_matching_error(policy.velocity(flow.noised(x0, eps, s), s, text, transformer), x0, eps)

    def step(i: int) -> dict[str, float]:
        if refresh and i > 0 and i % refresh == 0:
            with updater.full_weights():
                policy.refresh_reference()
        gen = step_generator(cfg.seed, i)
        if online:
            batch_prompts, x_w, x_l = online_batch(ctx, policy, prompts_pool, i, gen)
            if batch_prompts is None:
                return {"loss": 0.0, "pairs": 0.0}
            eps = torch.randn(x_w.shape, generator=gen).to(x_w.device)
            s = flow.sample_sigmas(len(batch_prompts), gen, shift).to(x_w.device)
        else:
            # the whole global batch's indices and noise on every rank; each trains on its share
            lat_w, lat_l = latent_sets[i % len(latent_sets)]  # mixed resolution: low on odd steps
            idx = batch_indices(n_pairs, cfg.batch, i, cfg.seed)
            eps = torch.randn((len(idx), *lat_w.shape[1:]), generator=gen)
            s = flow.sample_sigmas(len(idx), gen, shift)
            mine = share(ctx, len(idx))
            idx, eps, s = idx[mine], eps[mine].to(lat_w.device), s[mine].to(lat_w.device)
            batch_prompts = [prompts[j] for j in idx]
            x_w, x_l = lat_w[idx.to(lat_w.device)], lat_l[idx.to(lat_l.device)]
        text = encode_cached(policy, batch_prompts, cache)
        beta = beta_at(cfg.beta.model_dump(), i, steps)
        seen: dict[tuple[str, int], torch.Tensor] = {}  # the policy's errors the loss was computed from
        refs: list[tuple[torch.Tensor, torch.Tensor]] = []

        def branch(key: tuple[str, int], x0, rows: slice):
            def policy_errors():
                e = errors(x0[rows], eps[rows], s[rows], text.index(rows))
                seen[key] = e.detach()
                return e
            return policy_errors

        n = len(batch_prompts)
        params = policy.trainable_parameters() if mode == "stashed" else None
        loss = 0.0
        # gradient accumulation over the execution block's micro-batches of pairs; each adds its share
        # of the mean (the stashed schedule goes pair by pair inside a micro-batch)
        for m, part in enumerate(micro_batches(ctx, n)):
            with torch.no_grad(), policy.reference() as ref:
                sub = text.index(part)
                ref_w = errors(x_w[part], eps[part], s[part], sub, ref)
                ref_l = errors(x_l[part], eps[part], s[part], sub, ref)
            refs.append((ref_w, ref_l))
            if mode == "stashed":
                for j in range(part.start, part.stop):
                    k = j - part.start
                    one = slice(j, j + 1)
                    loss += float(dpo_backward(branch(("w", j), x_w, one), branch(("l", j), x_l, one),
                                               ref_w[k:k + 1], ref_l[k:k + 1], beta, mode="stashed", scale=1.0 / n,
                                               nll_winner=cfg.nll_chosen, params=params,
                                               backward=updater.backward)) / n
            else:
                share_of_mean = (part.stop - part.start) / n
                loss += float(dpo_backward(branch(("w", m), x_w, part), branch(("l", m), x_l, part), ref_w, ref_l,
                                           beta, mode=mode, scale=share_of_mean, nll_winner=cfg.nll_chosen,
                                           backward=updater.backward)) * share_of_mean
        e_ref_w, e_ref_l = torch.cat([r[0] for r in refs]), torch.cat([r[1] for r in refs])
        e_w, e_l = (torch.cat([seen[k] for k in sorted(seen) if k[0] == tag]) for tag in ("w", "l"))
        values = {"loss": mean_over_ranks(float(loss)), "beta": beta,
                  # the implicit-reward margin under the weights that took this step's loss (before the
                  # update): no extra forwards (re-running both branches after it cost 25% of a step)
                  "margin": mean_over_ranks(float(((e_w - e_ref_w) - (e_l - e_ref_l)).mean()))}
        if online:
            values["pairs"] = float(len(batch_prompts))  # what `pick` and `margin` kept of this step's candidates
        if not online and len(latent_sets) > 1:
            values["low_resolution"] = float(i % len(latent_sets))
        if real is not None:
            values["nll_real"] = real_nll_step(ctx, policy, updater, real, i, cache)
        values["grad_norm"] = updater.step()
        return values

    # a refreshed reference (a full copy, or with LoRA an adapter snapshot) is part of the state
    state = {"reference": ReferenceState(policy)} if refresh else {}
    if Loop(ctx, policy, updater, steps, state=state).run(step):
        save_policy(ctx, policy, updater)


run.distributed = True  # data parallel over pairs (offline sources): see parallel.py


def online_batch(ctx: JobContext, policy, prompts_pool: list[str], i: int, gen: torch.Generator):
    """OnlineVPO: sample n candidates per prompt from the current policy, judge them, and keep the pairs
    the source's `pick` and `margin` choose (by default best vs worst, ties dropped)."""
    cfg, src = ctx.config, ctx.config.pairs
    idx = batch_indices(len(prompts_pool), cfg.batch, i, cfg.seed)
    batch_prompts = [prompts_pool[j] for j in idx]
    n = src.n
    shape = (len(batch_prompts) * n, *policy.latent_shape(cfg.frames, *cfg.resolution))
    text = policy.encode_prompts([p for p in batch_prompts for _ in range(n)])
    noise = torch.randn(shape, generator=gen).to(ctx.device)
    latents = sample_guided(policy, text, noise, src.sample_steps or cfg.sample_steps, Guidance.of(src)).final
    videos = policy.decode(latents)
    # the judges run as the plan's execution block says (serial, or concurrent threads on a GPU)
    scores = torch.stack(score_references(src.judges, videos, [p for p in batch_prompts for _ in range(n)], ctx,
                                          ctx.execution.reward_execution)).mean(0).view(len(batch_prompts), n)
    keep_p, keep_w, keep_l = [], [], []
    for k, p in enumerate(batch_prompts):
        for win, lose in pick_pairs(scores[k], src.pick, src.margin):  # ties give no pair
            keep_p.append(p)
            keep_w.append(latents[k * n + win])
            keep_l.append(latents[k * n + lose])
    if not keep_p:
        return None, None, None
    return keep_p, torch.stack(keep_w), torch.stack(keep_l)
