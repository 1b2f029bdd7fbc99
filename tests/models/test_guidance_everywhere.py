"""Classifier-free guidance wherever a video is sampled: the recipe's `guidance_scale` and
`negative_prompt` (else the model catalogue's) reach the one guided sampler from evaluation, on-policy
and online DPO candidates, GRPO's BPGO prior samples and NRG, and change what is sampled."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from runtime.models import sampler
from runtime.models.guidance import sample_with_nrg
from runtime.models.sampler import OFF, Guidance, sample_guided
from runtime.rewards.registry import build_reward
from vpolang.api import check_source
from vpolang.lower import lower
from vpolang.source import SourceFile

from .test_nrg_guidance import tiny_policy

ROOT = Path(__file__).resolve().parents[2]
RECIPE = """vpo 0.1
use std.models
use std.shapes
model base = shapes.tiny_dit { guidance_scale = 1.5, negative_prompt = "catalogue" }
stage rl = grpo(base) {
  prompts = shapes.prompts(n = 4)
  reward = shapes.alignment
  lr = 1e-5
  guidance = 2.0
  negative_prompt = "rl negative"
  with bpgo { prior = base }
}
stage pref = dpo(base) {
  pairs = on_policy(base, prompts = shapes.prompts(n = 2), judges = [shapes.alignment], n = 2,
                    guidance_scale = 2.5, negative_prompt = "pref negative")
  lr = 1e-5
}
stage live = dpo(base) {
  pairs = online(shapes.prompts(n = 4), judges = [shapes.alignment], n = 2, guidance_scale = 3.0)
  lr = 1e-5
  batch = 1
}
stage eval = evaluate(base) {
  prompts = shapes.prompts(n = 2)
  metrics = [shapes.alignment]
  sample_steps = 2
}
"""


@pytest.fixture(scope="module")
def jobs():
    result = check_source(SourceFile("g.vpo", RECIPE, ROOT / "g.vpo"))
    assert not [d for d in result.diagnostics if d.severity == "error"], result.diagnostics
    return {job.id: job for job in lower(result.recipe).jobs}


@pytest.fixture
def calls(monkeypatch):
    """Every guided sampling call: (scale, the negative prompt's conditioning or None)."""
    seen = []
    original = sampler.sample

    def spy(policy, text, noise, steps, *args, **kwargs):
        seen.append((kwargs.get("guidance", 1.0), kwargs.get("uncond")))
        return original(policy, text, noise, steps, *args, **kwargs)

    monkeypatch.setattr(sampler, "sample", spy)
    return seen


def fake_ctx(config, tmp_path: Path):
    return SimpleNamespace(config=config, device="cpu", execution=SimpleNamespace(reward_execution="serial"), recipe_dir=ROOT, rank=0, world_size=1, is_main=True,
                           dist=SimpleNamespace(world_size=1), metrics=lambda *a, **k: None, log=lambda *a: None,
                           output_path=lambda name: tmp_path / name, input_path=lambda slot: None,
                           activity=lambda *a, **k: None)


def negative(policy, text: str):
    return policy.encode_prompts([text])


def test_guidance_changes_samples_and_scale_one_is_the_plain_sampler():
    policy = tiny_policy()
    text = policy.encode_prompts(["a red square moving up", "a blue circle moving left"])
    noise = torch.randn((2, *policy.latent_shape(8, 16, 16)), generator=torch.Generator().manual_seed(0))
    plain = sample_guided(policy, text, noise, 3, OFF).final
    assert torch.equal(sample_guided(policy, text, noise, 3, Guidance(1.0, "anything")).final, plain)
    guided = sample_guided(policy, text, noise, 3, Guidance(4.0, "")).final
    assert not torch.allclose(guided, plain, atol=1e-4)
    other = sample_guided(policy, text, noise, 3, Guidance(4.0, "a green triangle moving down")).final
    assert not torch.allclose(other, guided, atol=1e-4)  # the negative prompt is what it steers from
    # NRG steers on top of the guided velocity: at ~zero reward weight it is the guided sampler
    nrg = sample_with_nrg(policy, text, noise, 3, build_reward({"name": "sharpness", "spec": {
        "kind": "weight_free", "metric": "sharpness", "resize": 64}}), None, ["a", "b"], 1e-12,
        cfg=Guidance(4.0, ""))
    torch.testing.assert_close(nrg, guided, rtol=1e-5, atol=1e-6)


def test_the_plan_fills_guidance_from_the_recipe_and_the_catalogue(jobs):
    ev, gen, live = jobs["eval"].config, jobs["pref.pairs.on_policy.generate"].config, jobs["live"].config
    assert (ev.guidance_scale, ev.negative_prompt) == (1.5, "catalogue")  # the model's
    assert (gen.guidance_scale, gen.negative_prompt) == (2.5, "pref negative")
    assert (live.pairs.guidance_scale, live.pairs.negative_prompt) == (3.0, "catalogue")
    assert (jobs["rl"].config.guidance, jobs["rl"].config.negative_prompt) == (2.0, "rl negative")


def test_evaluation_samples_with_the_plans_guidance(jobs, calls, tmp_path):
    from runtime.trainers.evaluate import sample_all

    policy = tiny_policy()
    sample_all(fake_ctx(jobs["eval"].config, tmp_path), policy, ["a red square moving up"])
    (scale, uncond), = calls
    assert scale == 1.5 and torch.equal(uncond.embeds, negative(policy, "catalogue").embeds)


def test_on_policy_candidates_sample_with_the_sources_guidance(jobs, calls, tmp_path, monkeypatch):
    from runtime.trainers import generate

    monkeypatch.setattr(generate, "policy_from_ref", lambda ctx, ref: tiny_policy())
    generate.run(fake_ctx(jobs["pref.pairs.on_policy.generate"].config, tmp_path))
    assert len(calls) == 2 and all(scale == 2.5 for scale, _ in calls)
    assert torch.equal(calls[0][1].embeds, negative(tiny_policy(), "pref negative").embeds)


def test_online_candidates_sample_with_the_sources_guidance(jobs, calls, tmp_path):
    from runtime.trainers.dpo import online_batch

    policy = tiny_policy()
    online_batch(fake_ctx(jobs["live"].config, tmp_path), policy, ["a red square moving up"] * 4, 0,
                 torch.Generator().manual_seed(0))
    (scale, uncond), = calls
    assert scale == 3.0 and torch.equal(uncond.embeds, negative(policy, "catalogue").embeds)


def test_bpgo_prior_samples_with_the_stages_guidance(jobs, calls, tmp_path, monkeypatch):
    from runtime.trainers import grpo_advantages

    monkeypatch.setattr(grpo_advantages, "policy_from_ref", lambda ctx, ref: tiny_policy())
    typed = jobs["rl"].config.model_copy(update={"frames": 8, "resolution": [16, 16], "sample_steps": 2})
    cfg = typed.model_dump()
    priors = grpo_advantages.Priors(fake_ctx(typed, tmp_path), cfg["bpgo"], lambda videos, prompts: torch.zeros(4, 1))
    priors.lookup(["a red square moving up"], torch.zeros(1, 1))
    (scale, uncond), = calls
    assert scale == 2.0 and torch.equal(uncond.embeds, negative(tiny_policy(), "rl negative").embeds)
