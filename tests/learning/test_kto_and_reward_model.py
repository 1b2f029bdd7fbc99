"""KTO and reward-model training through `vpo run` on data written to disk as users would:

- KTO on a labels file (shapes videos good, the same videos played backwards bad) raises the implicit
  reward g = e_ref - e_theta of held-out forward videos above that of held-out reversed ones;
- a reward model trained on pairs (shapes video over noise) and labels ranks held-out pairs that its
  untrained self cannot, and a later stage scores with it (`rm.overall`)."""
from __future__ import annotations

import json

import pytest
import torch

from runtime.data.labels import LabelSet, write_labels
from runtime.data.pairs import write_pairs
from runtime.models.families import build_policy
from runtime.rewards.tiny import tiny_qwen_vl
from runtime.rewards.video_reward_model import VideoRewardModel, load_reward_model
from runtime.shapes.data import videos
from tests.learning.heldout import mean_flow_errors
from tests.runtime.conftest import job_dir, vpo
from vpolang.api import check_file
from vpolang.lower import lower

KTO = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 2, hidden = 48, heads = 2, ffn = 96 }

stage tuned = kto(tiny) {
  labels = labels("labels/labels.jsonl")
  beta   = 20     # the untrained model's errors move by ~0.1 per step, not ~0.001 as a pretrained one's
  steps  = 60
  batch  = 16
  lr     = 3e-4
}
"""


def implicit_reward(policy, reference, clips: torch.Tensor, prompts: list[str], draws: int = 4) -> torch.Tensor:
    """g = e_ref - e_theta per video (KTO's implicit reward), averaged over `draws` fixed noises and
    timesteps shared by both models."""
    x0, text = policy.encode_video(clips), policy.encode_prompts(prompts)
    return mean_flow_errors(reference, x0, text, draws) - mean_flow_errors(policy, x0, text, draws)


def frozen(clips: torch.Tensor) -> torch.Tensor:
    """Each video's first frame held for the whole clip: the shape does not move as its caption says."""
    return clips[:, :1].expand_as(clips).clone()


@pytest.mark.slow
def test_kto_on_a_labels_file_prefers_moving_over_frozen_videos(tmp_path):
    prompts, clips = videos(48, seed=0)
    write_labels(tmp_path / "labels", LabelSet(prompts * 2, torch.cat([clips, frozen(clips)]),
                                               ["good"] * 48 + ["bad"] * 48))
    recipe = tmp_path / "kto.vpo"
    recipe.write_text(KTO)
    run_dir = tmp_path / "run"
    vpo("run", recipe, "--run-dir", run_dir, "--progress", "quiet")

    spec = lower(check_file(recipe).recipe).job("tuned").config.model.model_dump()
    reference, tuned = build_policy(spec, seed=0), build_policy(spec, seed=0)
    tuned.load(job_dir(run_dir, "tuned") / "artifacts" / "policy")
    test_prompts, test_clips = videos(64, seed=99)
    forward = implicit_reward(tuned, reference, test_clips, test_prompts)
    backward = implicit_reward(tuned, reference, frozen(test_clips), test_prompts)
    gap = forward - backward  # paired: same prompt, noise and timestep
    t = float(gap.mean()) / (float(gap.std()) / len(gap) ** 0.5)
    assert t > 2.39, (t, float(gap.mean()))  # paired one-sided t-test, p < 0.01 at 63 degrees of freedom (measured t = 3.3)
    last = [json.loads(line) for line in (job_dir(run_dir, "tuned") / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["reward_desirable"] > last["reward_undesirable"], last


RM = """vpo 0.1
use std.models
use std.shapes

model backbone = models.qwen2_vl_2b { family = tiny, path = "qwen" }

stage rm = reward_model(backbone) {
  pairs  = pairs("pairs/pairs.jsonl")
  labels = labels("labels/labels.jsonl")
  dims   = [overall, motion]
  frames = 4
  epochs = 8
  batch  = 8
  lr     = 1e-3
}

stage report = evaluate(shapes.tiny_dit) {
  prompts      = shapes.prompts(n = 4, split = test)
  metrics      = [rm.overall, rm.motion]
  sample_steps = 2
}
"""


def heldout_pairs():
    prompts, clips = videos(32, seed=77, frames=4)
    noise = torch.rand(clips.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return prompts, clips, noise


def accuracy(model, prompts, good, bad) -> float:
    with torch.no_grad():
        return float((model(good, prompts)["overall"] > model(bad, prompts)["overall"]).float().mean())


@pytest.mark.slow
def test_reward_model_learns_pairs_and_labels_then_scores_a_later_stage(tmp_path):
    tiny_qwen_vl(tmp_path / "qwen", seed=0)
    prompts, clips = videos(24, seed=0, frames=4)
    noise = torch.rand(clips.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    # the second dimension is told the opposite on every pair: heads must learn separately
    write_pairs(tmp_path / "pairs", prompts, clips, noise, meta=[{"motion": "rejected"}] * 24)
    write_labels(tmp_path / "labels", LabelSet(prompts[:8] * 2, torch.cat([clips[:8], noise[:8]]),
                                               ["good"] * 8 + ["bad"] * 8))
    recipe = tmp_path / "rm.vpo"
    recipe.write_text(RM)
    run_dir = tmp_path / "run"
    vpo("run", recipe, "--run-dir", run_dir, "--progress", "quiet")

    folder = job_dir(run_dir, "rm") / "artifacts" / "reward_model"
    trained = load_reward_model(folder, "rm", ["overall", "motion"]).model
    untrained = VideoRewardModel.from_backbone(tmp_path / "qwen", ["overall", "motion"], frames=4, seed=0)
    test_prompts, good, bad = heldout_pairs()
    assert accuracy(trained, test_prompts, good, bad) >= 0.9
    assert accuracy(untrained, test_prompts, good, bad) < 0.9  # the heads start near zero: no ranking yet
    with torch.no_grad():
        motion = trained(good, test_prompts)["motion"] - trained(bad, test_prompts)["motion"]
    assert float((motion < 0).float().mean()) >= 0.9  # the opposite verdicts were learned per head

    metrics = json.loads((job_dir(run_dir, "report") / "artifacts" / "metrics" / "metrics.json").read_text())
    assert {"rm.overall", "rm.motion"} <= set(metrics["models"]["shapes.tiny_dit"]), metrics


def test_reward_model_with_lora_trains_adapters_and_saves_a_merged_backbone(tmp_path):
    from safetensors.torch import load_file

    tiny_qwen_vl(tmp_path / "qwen", seed=0)
    prompts, clips = videos(8, seed=0, frames=4)
    noise = torch.rand(clips.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    write_pairs(tmp_path / "pairs", prompts, clips, noise)
    recipe = RM.replace("  labels = labels(\"labels/labels.jsonl\")\n", "").replace("epochs = 8", "epochs = 2\n  lora_rank = 4")
    recipe = recipe[:recipe.index("stage report")]
    (tmp_path / "rm.vpo").write_text(recipe)
    vpo("run", tmp_path / "rm.vpo", "--run-dir", tmp_path / "run", "--progress", "quiet")
    folder = job_dir(tmp_path / "run", "rm") / "artifacts" / "reward_model"
    def by_layer(path):  # the saved backbone has no LM head, so its keys are prefixed differently
        weights = load_file(str(next(path.glob("*.safetensors"))))
        return {k[k.index("layers."):]: v for k, v in weights.items() if "layers." in k}

    saved, base = by_layer(folder / "backbone"), by_layer(tmp_path / "qwen")
    assert not any("lora" in k for k in saved)  # merged: a plain transformers folder
    changed = [k for k in saved if k in base and "q_proj" in k and not torch.equal(saved[k], base[k])]
    frozen = [k for k in saved if k in base and "mlp" in k and not torch.equal(saved[k], base[k])]
    assert changed and not frozen  # the adapters moved the attention projections and nothing else
    load_reward_model(folder, "rm", ["overall", "motion"])


VILA_RM = """vpo 0.1
use std.models

model critic_base = models.vila_13b { path = "llava" }

stage critic = reward_model(critic_base) {
  pairs  = pairs("pairs/pairs.jsonl")
  dims   = [overall]
  frames = 4
  epochs = 8
  batch  = 8
  lr     = 1e-3
}
"""


@pytest.mark.slow
def test_a_vila_critic_trains_through_vpo_run_on_a_llava_layout_folder(tmp_path):
    """The IPO recipe's critic family: `vpo check` is clean (the folder matches `vila`), the job trains
    through the Llava classes and its saved model ranks held-out pairs."""
    from runtime.rewards.tiny import tiny_llava

    tiny_llava(tmp_path / "llava", seed=0)
    prompts, clips = videos(24, seed=0, frames=4)
    noise = torch.rand(clips.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    write_pairs(tmp_path / "pairs", prompts, clips, noise)
    recipe = tmp_path / "critic.vpo"
    recipe.write_text(VILA_RM)
    checked = vpo("check", recipe)
    assert "W0301" not in checked.stdout + checked.stderr
    vpo("run", recipe, "--run-dir", tmp_path / "run", "--progress", "quiet")
    trained = load_reward_model(job_dir(tmp_path / "run", "critic") / "artifacts" / "reward_model", "critic",
                                ["overall"]).model
    assert type(trained.backbone).__name__ == "LlavaModel"
    test_prompts, good, bad = heldout_pairs()
    assert accuracy(trained, test_prompts, good, bad) >= 0.9
