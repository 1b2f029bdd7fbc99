"""Passes per optimiser step (or per wave of videos) of every job kind, counted by hand."""
from __future__ import annotations

import pytest

from vpolang.estimate import (Clip, Dpo, Evaluate, Generate, Grpo, Judge, Kto, OnlinePairs, RewardModel, Rwr,
                              Scorer, Sft, Synthesize, VisionLanguage, Work)
from vpolang.estimate.calibration import DPO_DECOUPLED_TIME_FACTOR

CLIP = Clip.of(33, "480p")
VLM = VisionLanguage(params=2_200_000_000, layers=28, hidden=1536)
RM = Scorer("rm", VLM)


def test_sft_and_rwr_encode_the_dataset_once_then_train_per_video():
    sft = Sft(clip=CLIP, batch=32, steps=100, dataset=500, scorers=(RM,))
    assert sft.step_work(world=16) == Work(train=32)
    assert sft.setup_work() == Work(vae_encode=500, prompts=500, scored=((RM, 500),))  # reward weights, once
    assert sft.total_steps(world=16) == 100 and sft.per_gpu(16) == 2
    assert Rwr(clip=CLIP, batch=8, steps=1).step_work(world=8) == Work(train=8)


def test_kto_adds_a_reference_forward_per_video():
    assert Kto(clip=CLIP, batch=128, steps=1).step_work(8) == Work(train=128, reference=128)
    assert Kto(clip=CLIP, batch=128, steps=1, nll_real=True).step_work(8) == Work(train=256, reference=128)


def test_dpo_passes():
    dpo = Dpo(clip=CLIP, batch=16, steps=10, dataset=1000)
    # policy fwd+bwd on winner and loser, reference forward on both
    assert dpo.step_work(16) == Work(train=32, reference=32)
    assert dpo.setup_work() == Work(vae_encode=2000, prompts=1000)  # two videos per pair
    assert Dpo(clip=CLIP, batch=16, steps=10, nll_real=True).step_work(16) == Work(train=48, reference=32)
    # decoupled: the same passes, one branch alive at a time plus a stashed gradient, 1.04x train time
    decoupled = Dpo(clip=CLIP, batch=16, steps=10, backward="decoupled")
    assert decoupled.step_work(16) == dpo.step_work(16)
    assert (dpo.training_peak(1, False).branches, decoupled.training_peak(1, False).branches) == (2, 1)
    assert decoupled.training_peak(1, False).stash_gradient and not dpo.training_peak(1, False).stash_gradient
    assert (dpo.train_time_factor, decoupled.train_time_factor) == (1.0, DPO_DECOUPLED_TIME_FACTOR)
    with pytest.raises(ValueError, match="standard or decoupled"):
        Dpo(clip=CLIP, batch=1, steps=1, backward="teleboost")


def test_online_dpo_samples_and_judges_candidates_every_step():
    online = Dpo(clip=CLIP, batch=8, steps=10, online=OnlinePairs(candidates=6, sample_steps=30, judges=(RM,)))
    # 8 prompts x 6 candidates x 30 steps; 48 decodes and judged videos; then the pair passes
    assert online.step_work(8) == Work(train=16, reference=16, sample=8 * 6 * 30, vae_decode=48, prompts=8,
                                       scored=((RM, 48),))
    assert online.setup_work() == Work()
    assert online.resident_scorers() == (RM,)


def test_grpo_passes():
    grpo = Grpo(clip=CLIP, batch=8, steps=200, group_size=8, sample_steps=50, train_fraction=0.6, kl=0.004,
                rewards=(RM,))
    trained = round(0.6 * 49)  # of the 50 steps, the last is deterministic
    assert grpo.trained_steps == trained == 29
    # each GPU samples its 2 rollouts in one batch; their updates share a pass where they drew the same step
    distinct = 49 * (1 - (1 - 1 / 49) ** 2)  # expected distinct timesteps of 2 draws from 49
    assert grpo.step_work(32) == Work(train=64 * 29, reference=64 * 29, sample=64 * 50, vae_decode=64, prompts=8,
                                      scored=((RM, 64),), sample_batch=2, update_batch=pytest.approx(2 / distinct))
    no_kl = Grpo(clip=CLIP, batch=8, steps=200, group_size=8, sample_steps=50)
    assert no_kl.step_work(32).reference == 0 and not no_kl.needs_reference
    guided = Grpo(clip=CLIP, batch=8, steps=200, group_size=8, sample_steps=50, guidance=4.5, updates_per_batch=2)
    assert guided.step_work(32).sample == 2 * 64 * 50  # with and without the prompt
    assert guided.step_work(32).train == 2 * 2 * 64 * 29
    assert guided.training_peak(1, False).branches == 2


def test_grpo_bpgo_prior_samples_each_new_prompt_once():
    # 100 steps x 8 prompts, but only 400 distinct prompts: 400 x 4 prior videos spread over 100 steps
    grpo = Grpo(clip=CLIP, batch=8, steps=100, group_size=8, sample_steps=50, rewards=(RM,), prior_samples=4,
                prompt_pool=400)
    work = grpo.step_work(8)
    assert (work.sample, work.prior) == (64 * 50, 16 * 50)
    assert work.vae_decode == 64 + 16 and work.scored == ((RM, 80),)
    # a tenth of the steps draws 80 new prompts: the prior's share per step grows once the pool is not the limit
    assert grpo.__class__(**{**grpo.__dict__, "steps": 10}).step_work(8).prior == 80 * 4 / 10 * 50


def test_reward_model_trains_the_vlm_on_both_videos_of_a_pair():
    rm = RewardModel(model=VLM, frames=16, batch=32, steps=10)
    (scorer, videos), = rm.step_work(8).scorer_train
    assert (scorer.model, scorer.frames, videos) == (VLM, 16, 64)
    assert rm.training_peak(1, False).branches == 2
    assert RewardModel(model=VLM, frames=8, batch=32, steps=1, videos_per_item=1.0).training_peak(1, False).branches == 1


def test_inference_jobs_run_in_waves_of_one_video_per_gpu():
    gen = Generate(videos=4003, clip=CLIP, sample_steps=50, per_prompt=4)
    assert gen.total_steps(world=8) == 501  # the last wave is partly idle
    assert gen.step_work(8) == Work(sample=8 * 50, vae_decode=8, prompts=8 / 4)
    ev = Evaluate(videos=300, clip=CLIP, sample_steps=50, scorers=(RM,), guidance=3.0)
    assert ev.step_work(1) == Work(sample=100, vae_decode=1, prompts=1, scored=((RM, 1),))
    swap = Scorer("judge", VLM, calls_per_video=2.0)
    assert Judge(videos=100, scorers=(swap,)).step_work(4) == Work(scored=((swap, 8.0),))
    assert Synthesize(videos=100).step_work(8) == Work()
