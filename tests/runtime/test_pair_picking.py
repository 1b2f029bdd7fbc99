"""Fields of the pair sources that used to be accepted and ignored now change what is trained on:
online(pick, margin) in DPO, on_policy(swap_check) in the judge job."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from runtime.algorithms.pairs import pick_pairs
from runtime.rewards.base import Reward
from runtime.trainers import judge
from tests.runtime.conftest import job_dir, vpo


def test_pick_pairs_honours_pick_and_margin():
    s = torch.tensor([0.1, 0.5, 0.45])
    assert pick_pairs(s, "best_worst") == [(1, 0)]
    assert pick_pairs(s, "best_worst", margin=0.45) == []
    assert sorted(pick_pairs(s, "all_pairs")) == [(1, 0), (1, 2), (2, 0)]
    assert pick_pairs(s, "all_pairs", margin=0.1) == [(1, 0), (2, 0)]
    assert pick_pairs(torch.tensor([0.3, 0.3]), "best_worst") == []


class Brightness(Reward):
    """Pointwise: the mean pixel."""

    name, heads = "brightness", ("brightness",)

    def score(self, videos, prompts):
        return {self.name: videos.flatten(1).mean(1)}


class Comparer(Brightness):
    """A judge that also compares two videos; `biased` always prefers the one shown first."""

    def __init__(self, biased: bool):
        self.biased = biased

    def compare(self, a, b, prompts):
        if self.biased:
            return torch.full((len(prompts),), 0.9)
        return torch.sigmoid(10 * (a.flatten(1).mean(1) - b.flatten(1).mean(1)))

    def compare_both_orders(self, a, b, prompts):
        return self.compare(a, b, prompts), 1 - self.compare(b, a, prompts)


def run_judge(tmp_path, monkeypatch, reward: Reward, swap_check: bool) -> dict:
    prompts, n = ["p0", "p1"], 3
    videos = torch.stack([torch.full((2, 3, 4, 4), v) for v in [0.1, 0.5, 0.3, -0.2, 0.4, 0.0]])
    (tmp_path / "in").mkdir(exist_ok=True)
    torch.save({"prompts": prompts, "n": n, "owners": [0, 0, 0, 1, 1, 1], "videos": videos}, tmp_path / "in" / "videos.pt")
    recorded = {}
    ctx = SimpleNamespace(
        config=SimpleNamespace(judges=[{"name": "j", "head": None}], pick="best_worst", margin=0.0,
                               swap_check=swap_check, labels=False),
        input_path=lambda slot: tmp_path / "in", output_path=lambda name: tmp_path / f"out-{swap_check}",
        metrics=lambda step, **values: recorded.update(values), log=print, job=SimpleNamespace(stage="s", span="x"))
    monkeypatch.setattr(judge, "reward_for", lambda ref, ctx=None: reward)
    monkeypatch.setattr(judge, "score_reward", lambda ref, v, p, ctx=None: reward(v, p)[reward.name])
    judge.run(ctx)
    return recorded


def test_swap_check_drops_pairs_a_position_biased_judge_decides_by_order(tmp_path, monkeypatch):
    assert run_judge(tmp_path, monkeypatch, Comparer(biased=True), swap_check=False)["pairs"] == 2
    with pytest.raises(Exception, match="swap check dropped every pair"):
        run_judge(tmp_path, monkeypatch, Comparer(biased=True), swap_check=True)


def test_swap_check_keeps_pairs_a_fair_judge_agrees_on(tmp_path, monkeypatch):
    checked = run_judge(tmp_path, monkeypatch, Comparer(biased=False), swap_check=True)
    assert checked["pairs"] == 2 and checked["swap_checked"] == 2 and checked["swap_dropped"] == 0
    pointwise = run_judge(tmp_path, monkeypatch, Brightness(), swap_check=True)
    assert pointwise["pairs"] == 2 and pointwise["swap_dropped"] == 0  # no position: consistent by construction


ONLINE = """vpo 0.1
use std.shapes
model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }
reward sharp = weight_free { metric = sharpness }
stage online = dpo(tiny) {
  pairs = online(shapes.prompts(n = 4), n = 3, judges = [sharp], PICK)
  steps = 1
  batch = 2
  lr    = 1e-5
}
"""


def online_pairs(tmp_path, name: str, pick: str) -> float:
    recipe = tmp_path / f"{name}.vpo"
    recipe.write_text(ONLINE.replace("PICK", pick))
    vpo("run", recipe, "--run-dir", tmp_path / name, "--progress", "quiet")
    rows = [json.loads(line) for line in (job_dir(tmp_path / name, "online") / "metrics.jsonl").read_text().splitlines()]
    return rows[0]["pairs"]


def test_online_pick_and_margin_change_the_pairs_trained_on(tmp_path):
    assert online_pairs(tmp_path, "best", "pick = best_worst") == 2
    assert online_pairs(tmp_path, "all", "pick = all_pairs") == 6
    assert online_pairs(tmp_path, "margin", "pick = best_worst, margin = 1.0") == 0
