"""Evaluation comparisons through `vpo run`: Good/Same/Bad of the policy against baselines (a pointwise
reward as the judge), and metrics ranked by how often they prefer the human-chosen video."""
from __future__ import annotations

import json
import math

import pytest

from runtime.data.pairs import write_pairs
from runtime.shapes.data import videos
from tests.runtime.conftest import job_dir, vpo

RECIPE = """vpo 0.1
use std.shapes

model tiny  = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }
model other = shapes.tiny_dit { layers = 2, hidden = 32, heads = 2, ffn = 64 }

reward flicker = weight_free { metric = temporal_flicker }

stage report = evaluate(tiny) {
  against      = [tiny, other]
  prompts      = shapes.prompts(n = 6, split = test)
  metrics      = [shapes.alignment, shapes.sharpness]
  gsb          = flicker
  human_pairs  = pairs("human/pairs.jsonl")
  sample_steps = 2
  save_samples = 0
}
"""


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    prompts, clips = videos(12, seed=4)
    # people chose the video that moves as its caption says over the same video played backwards
    write_pairs(root / "human", prompts, clips, clips.flip(1))
    (root / "r.vpo").write_text(RECIPE)
    vpo("run", root / "r.vpo", "--run-dir", root / "run", "--progress", "quiet")
    return job_dir(root / "run", "report") / "artifacts" / "metrics"


@pytest.fixture(scope="module")
def record(metrics_dir):
    return json.loads((metrics_dir / "metrics.json").read_text())


def test_per_sample_scores_are_paired_across_policies(metrics_dir, record):
    scores = json.loads((metrics_dir / "scores.json").read_text())
    assert len(scores["prompts"]) == 6
    for metric in ("alignment", "sharpness"):
        for name in ("tiny", "other"):
            values = scores["models"][name][metric]
            assert len(values) == 6
            assert sum(values) / 6 == pytest.approx(record["models"][name][metric]["mean"])


def test_gsb_against_itself_is_all_same_and_against_another_model_counts_verdicts(record):
    itself, other = record["gsb"]["tiny"], record["gsb"]["other"]
    assert (itself["good"], itself["same"], itself["bad"]) == (0, 6, 0)
    assert math.isnan(itself["win_rate"]) and itself["preference"] == 0.5 and itself["margin"] == 0.0
    assert other["good"] + other["same"] + other["bad"] == 6 and other["same"] < 6  # different samples
    assert other["preference"] == pytest.approx((other["good"] + 0.5 * other["same"]) / 6)


def test_metrics_are_ranked_against_human_choices(record):
    alignment, sharpness = record["judges"]["alignment"], record["judges"]["sharpness"]
    assert alignment["pairs"] == 12
    # the exact alignment reward sees direction: the chosen (forward) video ranks first
    assert alignment["recall@1_pessimistic"] >= 0.9 and alignment["mrr_optimistic"] >= 0.95
    # sharpness is blind to direction (reversed frames are as sharp): it ranks the human choice worse
    assert sharpness["recall@1_pessimistic"] < alignment["recall@1_pessimistic"]
    for judge in (alignment, sharpness):
        assert judge["mrr_optimistic"] >= judge["mrr_pessimistic"] and 0.5 <= judge["mrr_pessimistic"] <= 1.0


GUIDED = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }
model twin = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }  # the same weights

reward sharp = weight_free { metric = sharpness }

stage report = evaluate(tiny) {
  against      = [twin]
  prompts      = shapes.prompts(n = 4, split = test)
  metrics      = [sharp]
  guidance     = nrg(sharp, weight = 0.05)
  gsb          = sharp
  sample_steps = 3
  save_samples = 0
}
"""


def test_nrg_guidance_steers_the_policy_and_not_the_baselines(tmp_path):
    (tmp_path / "g.vpo").write_text(GUIDED)
    vpo("run", tmp_path / "g.vpo", "--run-dir", tmp_path / "run", "--progress", "quiet")
    record = json.loads((job_dir(tmp_path / "run", "report") / "artifacts" / "metrics" / "metrics.json").read_text())
    guided, plain = record["models"]["tiny"]["sharp"]["mean"], record["models"]["twin"]["sharp"]["mean"]
    assert guided > plain, (guided, plain)
    assert record["gsb"]["twin"]["good"] == 4  # every guided sample is sharper than its unguided twin
