"""Evaluation: every policy samples the same prompts with the same noise; each metric gets a mean and a
95% bootstrap interval. Writes metrics.json shaped {"models": {NAME: {METRIC: {"mean", "ci95"}}}},
scores.json with every sample's score ({"prompts": [...], "models": {NAME: {METRIC: [...]}}}), "paired":
the policy minus each baseline on the same samples (mean, 95% interval, t, permutation p), and sample
videos (mp4 and gif) per policy for the report; with `gsb`, Good/Same/Bad against each baseline, and
with `human_pairs`, how well each metric ranks the human choices (MRR, Recall@1). `guidance` (Flow-NRG)
steers the evaluated policy's sampling; the policies it is compared against sample unguided."""
from __future__ import annotations

import json

import torch

from vpolang.atomic import atomic_folder, atomic_path, publish_folder, staging_folder, write_text

from runtime.algorithms import flow
from runtime.algorithms.metrics import bootstrap_ci, paired_difference
from runtime.context import JobContext
from runtime.data.sources import load_prompts, load_videos, write_video
from runtime.models.guidance import sample_with_nrg
from runtime.models.sampler import Guidance, sample_guided
from runtime.rewards.registry import reward_for, score_reward

from .common import policy_from_ref
from .comparisons import good_same_bad, rank_judges, verdicts


def metric_names(ref: dict) -> list[tuple[str, dict]]:
    """Recipe names of a metric reference: `shapes.alignment` -> `alignment`; a multi-head reward without a
    head expands to one metric per head; reward-model stages keep their stage name (`rm.vq`)."""
    base = ref["name"] if ref.get("stage") else ref["name"].split(".")[-1]
    if ref.get("head"):
        return [(f"{base}.{ref['head']}", ref)]
    if ref.get("heads"):
        return [(f"{base}.{h}", {**ref, "head": h}) for h in ref["heads"]]
    return [(base, ref)]


def policy_name(ref: dict) -> str:
    return ref["name"]


def run(ctx: JobContext) -> None:
    cfg = ctx.config
    prompts = load_prompts(cfg.prompts, ctx.recipe_dir)
    prompts = [p for p in prompts for _ in range(cfg.samples_per_prompt)]
    refs = [cfg.policy] + list(cfg.against)
    metrics = [m for ref in cfg.metrics for m in metric_names(ref)]
    results: dict[str, dict] = {}
    per_sample: dict[str, dict[str, list[float]]] = {}
    samples_dir, index = staging_folder(ctx.output_path("samples")), []  # published whole at the end
    ours, comparisons = None, {}
    for ref in refs:
        name = policy_name(ref)
        guided = cfg.guidance if ours is None else None  # guidance steers the evaluated policy only
        policy = policy_from_ref(ctx, ref)
        videos = sample_all(ctx, policy, prompts, guidance=guided, what=f"{name}: sampling")
        if ours is None:
            ours = videos
        elif cfg.gsb:
            comparisons[name] = good_same_bad(verdicts(ctx, cfg.gsb, ours, videos, prompts))
        results[name], per_sample[name] = {}, {}
        for metric, mref in metrics:
            ctx.activity(f"{name}: scoring {metric}")
            scores = score_reward(mref, videos, prompts, ctx)
            lo, hi = bootstrap_ci(scores, cfg.ci_resamples, seed=cfg.seed)
            results[name][metric] = {"mean": float(scores.mean()), "ci95": [lo, hi], "n": int(scores.numel())}
            per_sample[name][metric] = [float(x) for x in scores.flatten()]
        if cfg.reversal_gap:
            ctx.activity(f"{name}: reversal gap")
            scores = reversal_gaps(ctx, policy)
            lo, hi = bootstrap_ci(scores, cfg.ci_resamples, seed=cfg.seed)
            results[name]["reversal_gap"] = {"mean": float(scores.mean()), "ci95": [lo, hi], "n": int(scores.numel())}
            per_sample[name]["reversal_gap"] = [float(x) for x in scores]
        index += save_samples(ctx, samples_dir, name, videos, prompts)
        ctx.log(f"{name}: " + ", ".join(f"{m} {v['mean']:.3f}" for m, v in results[name].items()))
    write_text(samples_dir / "index.jsonl", "".join(json.dumps(rec) + "\n" for rec in index))
    publish_folder(samples_dir, ctx.output_path("samples"))
    record = {"models": results, "prompts": len(set(prompts)), "samples": len(prompts), "policy": refs[0]["name"]}
    if len(refs) > 1:
        record["paired"] = paired_differences(per_sample, [policy_name(r) for r in refs], cfg)
        # every policy minus every other: the report's verdict per stage reads a stage minus its start
        names = list(dict.fromkeys(policy_name(r) for r in refs))
        record["paired_all"] = {a: paired_differences(per_sample, [a] + [b for b in names if b != a], cfg)
                                for a in names}
    if comparisons:
        record["gsb"] = comparisons  # the policy against each of `against`, judged by `gsb`
    if cfg.human_pairs:
        record["judges"] = rank_judges(ctx, metrics)
    with atomic_folder(ctx.output_path("metrics")) as out:
        write_text(out / "metrics.json", json.dumps(record, indent=2))
        write_text(out / "scores.json", json.dumps({"prompts": prompts, "models": per_sample}))
    ctx.metrics(1, **{f"{refs[0]['name']}/{m}": v["mean"] for m, v in results[refs[0]["name"]].items()})


def paired_differences(per_sample: dict, names: list[str], cfg: dict) -> dict:
    """The policy minus each of `against`, metric by metric, on the same samples (same prompt and noise):
    a paired comparison is far more sensitive than two independent intervals."""
    ours = per_sample[names[0]]

    def paired(metric: str, theirs: list[float]) -> dict:
        return paired_difference(torch.tensor(ours[metric]), torch.tensor(theirs), cfg.ci_resamples, cfg.seed)

    return {name: {metric: paired(metric, values) for metric, values in per_sample[name].items()}
            for name in names[1:] if name != names[0]}


@torch.no_grad()
def reversal_gaps(ctx: JobContext, policy, batch: int = 64) -> torch.Tensor:
    """Per held-out clip of `reversal_gap`: the error of its reversed copy minus its own, under noises and
    timesteps that depend only on the clip's position (identical across policies: paired)."""
    cfg = ctx.config
    clips = load_videos(cfg.reversal_gap, ctx.recipe_dir, cfg.frames, cfg.resolution, ctx.stop_event.is_set)
    out = []
    for i in range(0, len(clips.prompts), batch):
        pixels = clips.videos[i:i + batch]
        text = policy.encode_prompts(clips.prompts[i:i + batch])
        out.append(flow.reversal_gap(policy.velocity, policy.encode_video(pixels), policy.encode_video(pixels.flip(1)),
                                     text, seed=cfg.seed * 1_000_003 + i))
    return torch.cat(out)


@torch.no_grad()
def sample_all(ctx: JobContext, policy, prompts: list[str], batch: int = 32, guidance=None,
               what: str = "sampling") -> torch.Tensor:
    """ODE samples with noise seeded by the prompt's position: identical across policies. With
    `guidance` (nrg(reward, weight)), every step's velocity is steered by the reward's gradient."""
    cfg = ctx.config
    cfg_guidance = Guidance.of(cfg)  # classifier-free guidance: every compared policy alike
    shape = policy.latent_shape(cfg.frames, *cfg.resolution)
    gen = torch.Generator().manual_seed(cfg.seed)
    noise = torch.randn((len(prompts), *shape), generator=gen)
    out = []
    for i in range(0, len(prompts), batch):
        ctx.activity(what, i, len(prompts))
        text = policy.encode_prompts(prompts[i:i + batch])
        start = noise[i:i + batch].to(ctx.device)
        if guidance:
            latents = sample_with_nrg(policy, text, start, cfg.sample_steps, reward_for(guidance.reward, ctx),
                                      guidance.reward.get("head"), prompts[i:i + batch], guidance.weight,
                                      guidance.clamp, cfg_guidance)
        else:
            latents = sample_guided(policy, text, start, cfg.sample_steps, cfg_guidance).final
        out.append(policy.decode(latents).cpu())
    return torch.cat(out)


def save_samples(ctx: JobContext, folder, name: str, videos: torch.Tensor, prompts: list[str]) -> list[dict]:
    """Writes the policy's first samples (mp4 and gif) into `folder`; returns their index records."""
    keep = ctx.config.save_samples
    index = []
    for i in range(min(keep, len(prompts))):
        file = folder / f"{name.replace('.', '_')}_{i}.mp4"
        write_video(file, videos[i], fps=ctx.config.model.fps)
        save_gif(folder / file.with_suffix(".gif").name, videos[i])
        index.append({"policy": name, "prompt": prompts[i], "mp4": file.name, "gif": file.with_suffix(".gif").name})
    return index


GIF_MIN_SIZE = 192  # px: small videos are upscaled (nearest neighbour) until shape and motion are visible


def save_gif(path, video: torch.Tensor, min_size: int = GIF_MIN_SIZE) -> None:
    from PIL import Image

    frames = ((video.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    scale = max(1, -(-min_size // max(frames.shape[1], frames.shape[2])))
    images = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=125, loop=0)
