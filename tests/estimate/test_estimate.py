"""The entry point: time, GPU-hours and dollars by hand and against the H100 runs; the fit check and the
fixes it suggests, each re-checked."""
from __future__ import annotations

import pytest

from vpolang.estimate import Clip, Dpo, Efficiency, Generate, Grpo, Scorer, Sft, VisionLanguage, estimate_job
from vpolang.estimate import calibration as cal
from vpolang.estimate.estimate import optimizer_step_seconds
from vpolang.estimate.flops import transformer_pass, vae_decode_flops

from .common import WAN_1_3B, cluster, measurement

CLIP = Clip.of(33, "480p")
FWD_BWD = transformer_pass(WAN_1_3B, 14_040).training()  # 237.6 TFLOP


def test_sft_time_gpu_hours_and_dollars_by_hand():
    est = estimate_job(Sft(clip=CLIP, batch=32, steps=100), WAN_1_3B, cluster(nodes=2))
    # 32 videos over 16 H100s: 2 fwd+bwd of 237.6 TFLOP per GPU at 39.1% of 989 TFLOP/s, times the
    # trainer's measured slowdown at (at least) 14,040 tokens per micro-batch, plus ZeRO-2's optimiser step
    # (several GPUs) over the 1.42B parameters
    zero_step = cal.ZERO_OPTIMIZER_STEP_S * WAN_1_3B.params / cal.WAN_PARAMS
    step = 2 * FWD_BWD / (989e12 * cal.TRAIN_MFU) * cal.dit_slowdown(14_040 * est.micro_batch) + zero_step
    assert est.step_time_s == pytest.approx(step)
    # ... which is twice the trainer's measured 0.651 s step of one video without its optimiser, plus ZeRO's
    measured, _, optimizer = cal.TRAINER_STEPS[14_040]
    assert est.step_time_s == pytest.approx(2 * (measured - optimizer) + zero_step, rel=0.01)
    assert est.hours == pytest.approx(100 * step / 3600)
    assert est.gpu_hours == pytest.approx(est.hours * 16)
    assert est.cost_usd == pytest.approx(est.gpu_hours * 2.50)
    assert est.flops == pytest.approx(100 * 32 * FWD_BWD) and est.steps == 100
    assert est.fits and not est.checkpointing and est.fixes == ()
    assert est.breakdown["train"] == est.flops and not est.checkpointing
    assert "gradient_checkpointing" not in est.breakdown  # the block carries decisions, not the breakdown


def test_decoupled_dpo_step_time_predicts_the_measured_runs():
    # the bench times winner + loser fwd+bwd (its reference errors come before the clock starts)
    rows = {(r["frames"], r["mode"]): r for r in measurement(cal.WAN_DPO)["rows"]}
    for frames in (33, 49):
        est = estimate_job(Dpo(clip=Clip.of(frames, "480p"), batch=1, steps=1, backward="decoupled",
                               checkpointing=False), WAN_1_3B, cluster(gpus_per_node=1))
        train_s = cluster(gpus_per_node=1).seconds(est.flops_by_part["train"], training=True)
        predicted = train_s * cal.DPO_DECOUPLED_TIME_FACTOR
        assert predicted == pytest.approx(rows[frames, "stashed"]["step_s"], rel=0.08), frames


def test_setup_encodes_the_dataset_once():
    est = estimate_job(Sft(clip=CLIP, batch=32, steps=100, dataset=1000), WAN_1_3B, cluster(nodes=2))
    bare = estimate_job(Sft(clip=CLIP, batch=32, steps=100), WAN_1_3B, cluster(nodes=2))
    assert est.flops_by_part["vae"] > 0 and est.flops_by_part["text"] == 1000 * 2 * 5.7e9 * 512
    assert est.hours > bare.hours and est.step_time_s == bare.step_time_s


def grpo(steps: int, **kw) -> Grpo:
    judge = Scorer("judge", VisionLanguage(params=8_300_000_000, layers=28, hidden=3584))
    return Grpo(clip=CLIP, batch=8, steps=steps, group_size=8, sample_steps=50, kl=0.004, rewards=(judge,), **kw)


def test_grpo_cost_is_linear_in_steps():
    full = estimate_job(grpo(200), WAN_1_3B, cluster(nodes=4))
    tenth = estimate_job(grpo(20), WAN_1_3B, cluster(nodes=4))
    assert tenth.cost_usd == pytest.approx(full.cost_usd / 10)
    assert tenth.gpu_hours == pytest.approx(full.gpu_hours / 10) and tenth.step_time_s == full.step_time_s
    # where the time goes: rollouts (50 forwards per video) outweigh the 29 trained steps' updates
    parts = full.flops_by_part
    assert parts["sampling"] == pytest.approx(200 * 64 * 50 * FWD_BWD / 3.258, rel=0.01)
    assert parts["vae"] == pytest.approx(200 * 64 * vae_decode_flops(WAN_1_3B, CLIP))
    assert parts["train"] > parts["sampling"] > parts["reference"] > parts["scoring"] > 0


def test_overrides_of_price_and_efficiency():
    base = estimate_job(grpo(10), WAN_1_3B, cluster(nodes=4))
    priced = estimate_job(grpo(10), WAN_1_3B, cluster(nodes=4, usd_per_gpu_hour=1.0))
    assert priced.cost_usd == pytest.approx(base.gpu_hours * 1.0)
    faster = estimate_job(grpo(10), WAN_1_3B, cluster(nodes=4, efficiency=Efficiency(2 * cal.TRAIN_MFU,
                                                                                      2 * cal.INFERENCE_MFU)))
    # compute halves; the optimiser's step (host-bound, calibrated separately) does not
    optimizer = optimizer_step_seconds(WAN_1_3B.params, cluster(nodes=4))
    assert faster.step_time_s == pytest.approx((base.step_time_s - optimizer) / 2 + optimizer)


def test_cpu_jobs_have_times_but_no_gpu_hours_or_capacity():
    est = estimate_job(Sft(clip=CLIP, batch=4, steps=2), WAN_1_3B, cluster("cpu", gpus_per_node=0))
    assert est.hours > 0 and est.gpu_hours == est.cost_usd == 0.0
    assert est.capacity_gib is None and est.fits


def test_inference_step_is_one_video_per_gpu():
    est = estimate_job(Generate(videos=160, clip=CLIP, sample_steps=50), WAN_1_3B, cluster(nodes=2))
    # 14,040-token forwards at the slowdown the trainer measured there (0.97: a little faster than the bare loop)
    per_video = (50 * FWD_BWD / 3.258 / (989e12 * cal.INFERENCE_MFU) * cal.dit_slowdown(14_040)
                 + vae_decode_flops(WAN_1_3B, CLIP) / (989e12 * cal.INFERENCE_MFU))
    assert est.steps == 10 and est.step_time_s == pytest.approx(per_video, rel=0.01)
    assert est.micro_batch is None and est.fits and "weights" in est.memory_gib


FULL_DPO_720P = Dpo(clip=Clip.of(81, "720p"), batch=16, steps=100, checkpointing=True)


def test_full_dpo_at_720p_81_frames_does_not_fit_a_24_gib_gpu():
    est = estimate_job(FULL_DPO_720P, WAN_1_3B, cluster("RTX-4090"))
    assert not est.fits and est.peak_memory_gib > est.capacity_gib == 23.6
    assert est.memory_gib["activations"] > 20  # two 75,600-token branches, even checkpointed
    changes = [fix.change for fix in est.fixes]
    # splitting each video over 4 of the node's GPUs fits (2 does not); ZeRO-3 and more nodes would shard
    # only the weights' states, which is not what overflows
    assert changes == ["sequence_parallel = 4", 'gpu = "L40S"']  # then the smallest GPU that fits unchanged
    assert all(fix.peak_memory_gib <= fix.capacity_gib for fix in est.fixes)
    # one GPU per node: no sequence parallelism; the pairs pair an activation change with LoRA
    single = [fix.change for fix in estimate_job(FULL_DPO_720P, WAN_1_3B, cluster("RTX-4090", gpus_per_node=1)).fixes]
    assert single[0] == "backward = decoupled, lora_rank = 64" and not any("sequence" in c for c in single)


def test_each_suggested_fix_is_what_the_estimate_gives():
    fix = {f.change: f for f in estimate_job(FULL_DPO_720P, WAN_1_3B, cluster("RTX-4090")).fixes}
    rerun = estimate_job(FULL_DPO_720P, WAN_1_3B, cluster("RTX-4090", sequence_parallel=4))
    chosen = fix["sequence_parallel = 4"]
    assert rerun.fits and chosen.peak_memory_gib == rerun.peak_memory_gib and chosen.cost_usd == rerun.cost_usd
    assert not estimate_job(FULL_DPO_720P, WAN_1_3B, cluster("RTX-4090", sequence_parallel=2)).fits
    assert "GiB" in str(chosen) and "$" in str(chosen)


def test_single_fixes_come_before_combinations():
    # 720p x 49: both branches checkpointed need about 28 GiB on a 24 GiB GPU; decoupled alone fits
    est = estimate_job(Dpo(clip=Clip.of(49, "720p"), batch=16, steps=10, checkpointing=True), WAN_1_3B,
                       cluster("RTX-4090"))
    assert not est.fits
    assert est.fixes[0].change == "backward = decoupled"
    assert all(", " not in f.change for f in est.fixes)  # no pairs when a single change is enough


def test_compile_shortens_the_trained_passes_and_their_activations():
    eager = estimate_job(Sft(clip=CLIP, batch=1, steps=10), WAN_1_3B, cluster(gpus_per_node=1))
    compiled = estimate_job(Sft(clip=CLIP, batch=1, steps=10, compiled=True), WAN_1_3B, cluster(gpus_per_node=1))
    optimizer = optimizer_step_seconds(WAN_1_3B.params, cluster(gpus_per_node=1))
    # the measured 0.614 -> 0.485 s fwd+bwd and 47.7 -> 38.0 GiB of the reference step
    assert compiled.step_time_s - optimizer == pytest.approx((eager.step_time_s - optimizer) * 0.4847 / 0.6136)
    assert compiled.memory_gib["activations"] == pytest.approx(eager.memory_gib["activations"]
                                                               * cal.COMPILED_ACTIVATION_BYTES)
    assert eager.memory_gib["activations"] - compiled.memory_gib["activations"] == pytest.approx(9.64, abs=0.05)
