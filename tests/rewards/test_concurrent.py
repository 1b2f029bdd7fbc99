"""Concurrent reward execution equals serial execution; the greedy grouping respects its budget."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.rewards.backbones import ShapesPatches, load_backbone
from runtime.rewards.clip import load_clip_score
from runtime.rewards.concurrent import benchmark_modes, makespan, plan_groups, profile_rewards, run_rewards
from runtime.rewards.feature_consistency import FeatureConsistencyReward
from runtime.rewards.shapes_world import ShapesWorldReward
from runtime.rewards.video_reward_model import load_reward_model
from runtime.rewards.weight_free import WeightFreeReward
from runtime.shapes import data as shapes_data


def light_rewards(models):
    return {"flicker": WeightFreeReward("temporal_flicker", 32), "flow": WeightFreeReward("flow_magnitude", 32),
            "smooth": WeightFreeReward("motion_smoothness", 32), "align": ShapesWorldReward("alignment"),
            "subject": FeatureConsistencyReward("subject", ShapesPatches()),
            "dino": FeatureConsistencyReward("background", load_backbone(str(models["dinov2"]))),
            "clip": load_clip_score(models["clip"], frames=2),
            "rm": load_reward_model(models["rm_va"], "rm", ["vq", "mq", "ta"])}


def batch():
    prompts, videos = shapes_data.videos(3, seed=1, frames=4, size=16)
    return videos, prompts


@pytest.mark.parametrize("mode,budget", [("threads", None), ("grouped", 0.6), ("grouped", None)])
def test_concurrent_scores_equal_serial_scores(models, mode, budget):
    rewards = light_rewards(models)
    videos, prompts = batch()
    serial = run_rewards(rewards, videos, prompts, "serial")
    overlapped = run_rewards(rewards, videos, prompts, mode, budget_gib=budget)
    assert list(overlapped.scores) == list(rewards)
    for name in rewards:
        for head, scores in serial.scores[name].items():
            assert torch.allclose(overlapped.scores[name][head], scores, atol=1e-6, rtol=0), (name, head)
    assert sorted(n for g in overlapped.groups for n in g) == sorted(rewards)
    assert serial.groups == [[n] for n in rewards]
    assert serial.makespan_s > 0 and overlapped.makespan_s > 0
    assert set(overlapped.seconds) == set(rewards)


def test_grouping_respects_the_memory_budget(models):
    rewards = light_rewards(models)
    budget = 1.2  # the model rewards need 0.5-1.0 GiB each, the weight-free ones none
    result = run_rewards(rewards, *batch(), mode="grouped", budget_gib=budget)
    for group in result.groups:
        assert len(group) == 1 or sum(rewards[n].needs.memory_gib for n in group) <= budget


def test_plan_groups_packs_slow_rewards_with_fast_ones():
    seconds = {"vlm": 4.0, "rm": 3.0, "clip": 1.0, "flow": 0.5, "flicker": 0.1}
    memory = {"vlm": 16.0, "rm": 6.0, "clip": 1.0, "flow": 0.0, "flicker": 0.0}
    groups = plan_groups(seconds, memory, budget_gib=20.0)
    assert groups == [["vlm", "clip", "flow", "flicker"], ["rm"]]
    assert makespan(groups, seconds) == 7.0  # serial: 8.6
    assert plan_groups(seconds, memory, None) == [list(seconds)]
    assert plan_groups({"huge": 1.0, "x": 1.0}, {"huge": 50.0, "x": 1.0}, 10.0) == [["huge"], ["x"]]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3),
                       st.tuples(st.floats(0.01, 10), st.floats(0, 8)), min_size=1, max_size=8),
       st.floats(1, 16))
def test_plan_groups_places_every_reward_once_within_budget_and_never_slower_than_serial(workers, budget):
    seconds = {n: s for n, (s, _) in workers.items()}
    memory = {n: m for n, (_, m) in workers.items()}
    groups = plan_groups(seconds, memory, budget)
    assert sorted(n for g in groups for n in g) == sorted(workers)
    assert all(len(g) == 1 or sum(memory[n] for n in g) <= budget + 1e-9 for g in groups)
    assert makespan(groups, seconds) <= sum(seconds.values()) + 1e-9


def test_profile_rewards_measures_each_reward(models):
    rewards = {k: v for k, v in light_rewards(models).items() if k in ("flicker", "clip")}
    seconds = profile_rewards(rewards, *batch(), repeats=2)
    assert set(seconds) == {"flicker", "clip"} and all(s > 0 for s in seconds.values())


def test_unknown_modes_are_refused(models):
    with pytest.raises(ValueError, match="unknown reward execution mode 'mps'"):
        run_rewards({"f": WeightFreeReward("sharpness")}, *batch(), mode="mps")


@pytest.mark.gpu
def test_on_cuda_each_thread_runs_on_its_own_stream_and_scores_equal_serial(models):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    rewards = {n: r.to("cuda") for n, r in light_rewards(models).items()}
    assert rewards["clip"].device.type == "cuda" and rewards["flicker"].device.type == "cuda"
    assert rewards["align"].device.type == "cpu"  # the shapes world's rewards stay on the CPU
    videos, prompts = batch()
    videos = videos.cuda()
    serial = run_rewards(rewards, videos, prompts, "serial")
    threads = run_rewards(rewards, videos, prompts, "threads")
    for name in rewards:
        for head, scores in serial.scores[name].items():
            assert torch.allclose(threads.scores[name][head], scores, atol=1e-4), (name, head)


def test_benchmark_reports_every_mode_and_checks_scores(models):
    rewards = {k: v for k, v in light_rewards(models).items() if k in ("flicker", "flow", "clip", "dino")}
    results = benchmark_modes(rewards, *batch(), budget_gib=1.0, repeats=1)
    assert set(results) == {"serial", "threads", "grouped"}
    assert all(r.makespan_s > 0 for r in results.values())
    assert results["threads"].groups == [list(rewards)]


def test_benchmark_refuses_a_mode_that_changes_scores(models, monkeypatch):
    from runtime.rewards import concurrent

    original = concurrent._run_group

    def corrupt(group, videos, prompts):
        out = original(group, videos, prompts)
        return {n: ({h: s + 1 for h, s in res.items()}, t) if len(group) > 1 else (res, t)
                for n, (res, t) in out.items()}

    monkeypatch.setattr(concurrent, "_run_group", corrupt)
    rewards = {k: v for k, v in light_rewards(models).items() if k in ("flicker", "flow")}
    with pytest.raises(RuntimeError, match="threads execution changed reward"):
        benchmark_modes(rewards, *batch(), repeats=1)
