"""The planner's sequence parallelism: activations per GPU / k, all-to-all time at the cluster's link,
E0302's fixes (the smallest degree that fits; never ZeRO-3, nodes or LoRA for one video's activations)
and the Wan2.1-14B 720p x 81-frame jobs on 8-GPU H100 nodes that fit with a suggested degree."""
from __future__ import annotations

import pytest

from vpolang.estimate import Clip, VideoDiT
from vpolang.estimate.estimate import all_to_all_seconds, estimate_job
from vpolang.estimate.fixes import no_fit_hint
from vpolang.estimate.flops import tokens_per_video
from vpolang.estimate.memory import all_to_all_bytes
from vpolang.estimate.workload import Dpo, Grpo

from .common import cluster

WAN_14B = VideoDiT(params=14_000_000_000, layers=40, hidden=5120, heads=40, ffn=13824, patch=(1, 2, 2),
                   vae_stride=(4, 8, 8), latent_channels=16, text_len=512, text_dim=4096,
                   text_encoder_params=5_700_000_000, vae_params=127_000_000)
DPO_720P = Dpo(clip=Clip.of(81, "720p"), batch=32, steps=100, checkpointing=True)
GRPO_720P = Grpo(clip=Clip.of(81, "720p"), batch=8, steps=10, group_size=8, sample_steps=20)


def test_activations_divide_by_the_degree_and_the_rows_per_group_multiply():
    one = estimate_job(DPO_720P, WAN_14B, cluster(nodes=4), with_fixes=False)
    eight = estimate_job(DPO_720P, WAN_14B, cluster(nodes=4, sequence_parallel=8), with_fixes=False)
    assert eight.memory_gib["activations"] == pytest.approx(one.memory_gib["activations"] / 8, rel=1e-3)
    assert (one.micro_batch * one.grad_accum, eight.micro_batch * eight.grad_accum) == (1, 8)  # 32 vs 4 groups
    assert eight.memory_gib["weights"] == one.memory_gib["weights"]  # the states are not split by sequence


def test_all_to_all_time_by_hand():
    tokens = tokens_per_video(WAN_14B, DPO_720P.clip)
    assert tokens == 21 * 45 * 80
    # 40 layers x 6 all-to-alls x (75,600 / 8 tokens x 5,120 x 2 bytes) x 7/8 leave the GPU: 20.3 GB
    sent = all_to_all_bytes(40, 5120, tokens, 8, 2)
    assert sent == pytest.approx(40 * 6 * 9450 * 5120 * 2 * 7 / 8) and sent == pytest.approx(20.32e9, rel=1e-3)
    nvlink = cluster(nodes=4, sequence_parallel=8)
    # a checkpointed training pass: forward, recomputed forward, backward, at 450 GB/s
    assert all_to_all_seconds(WAN_14B, tokens, 1, nvlink, True, True) == pytest.approx(3 * sent / 450e9)
    slow = cluster(nodes=4, sequence_parallel=8, interconnect_gb_s=45.0)
    assert all_to_all_seconds(WAN_14B, tokens, 1, slow, True, True) == pytest.approx(3 * sent / 45e9)
    across = cluster(nodes=4, sequence_parallel=16)  # a group spanning two nodes crosses the network
    assert across.link_gb_s == 50.0
    fast = estimate_job(DPO_720P, WAN_14B, nvlink, with_fixes=False).step_time_s
    assert estimate_job(DPO_720P, WAN_14B, slow, with_fixes=False).step_time_s > fast
    assert all_to_all_seconds(WAN_14B, tokens, 1, cluster(nodes=4), True, True) == 0.0


def test_wan14b_720p_dpo_and_grpo_fit_with_the_suggested_degree():
    dpo = estimate_job(DPO_720P, WAN_14B, cluster(nodes=4))
    assert not dpo.fits and dpo.memory_gib["activations"] > 80
    assert [f.change for f in dpo.fixes] == ["sequence_parallel = 8"]  # nothing that shards only the states
    assert estimate_job(DPO_720P, WAN_14B, cluster(nodes=4, sequence_parallel=8)).fits
    grpo = estimate_job(GRPO_720P, WAN_14B, cluster(nodes=4))
    assert not grpo.fits
    assert [f.change for f in grpo.fixes][0] == "sequence_parallel = 2"  # the smallest degree that fits
    assert estimate_job(GRPO_720P, WAN_14B, cluster(nodes=4, sequence_parallel=2)).fits


def test_1080p_481_frames_gets_a_hint_about_activations_not_lora_or_nodes():
    big = Dpo(clip=Clip.of(481, "1080p"), batch=32, steps=100, checkpointing=True)
    est = estimate_job(big, WAN_14B, cluster(nodes=4))
    assert not est.fits and est.fixes == ()
    hint = no_fit_hint(est.memory_gib, est.capacity_gib, WAN_14B, cluster(nodes=4))
    assert "activations" in hint and "sequence_parallel (up to 8" in hint and "do not shrink them" in hint
