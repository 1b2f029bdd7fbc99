"""The quickstart learns at every stage (issue 18): `examples/quickstart.vpo` itself, run through `vpo run`
as the README's first command runs it, judged by its own evaluation on held-out test-split prompts (the
combinations of shape, colour and direction never seen in training), paired on the same noise:

- SFT beats the untrained model on alignment (and lowers the held-out flow-matching loss);
- GRPO (reward alignment + 0.5 smoothness) beats SFT on its reward's terms;
- DPO against synthetic temporal negatives beats GRPO on a temporal measure (smoothness, or the held-out
  clips' `reversal_gap`) without a significant alignment loss;

each with paired p < 0.01, read through the report's own verdicts (vpolang/report/verdict.py). This
replaces the former SFT-then-GRPO test, whose recipe is the quickstart's first two stages; the suite's
only multi-minute job: about 4-5 minutes on two idle cores (docs and measurements: README.md)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.models.families import build_policy
from runtime.shapes.data import videos
from tests.learning.heldout import mean_flow_errors
from tests.runtime.conftest import job_dir, vpo
from vpolang.api import check_file
from vpolang.lower import lower
from vpolang.report.collect import collect_run
from vpolang.report.verdict import stage_verdicts

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "examples" / "quickstart.vpo"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("quickstart") / "run"
    # let it use both of CI's cores (the other tests keep to one)
    vpo("run", RECIPE, "--run-dir", run_dir, "--progress", "quiet", timeout=3600, OMP_NUM_THREADS="2")
    metrics = json.loads((job_dir(run_dir, "report") / "artifacts" / "metrics" / "metrics.json").read_text())
    return run_dir, metrics


def heldout_loss(policy, spec: dict, n: int = 64) -> float:
    """Flow-matching loss on fresh videos (a different seed from training) at fixed noise."""
    prompts, clips = videos(n, seed=99, frames=spec["frames"], size=spec["resolution"][0])
    return float(mean_flow_errors(policy, policy.encode_video(clips), policy.encode_prompts(prompts), draws=1,
                                  seed=0).mean())


@pytest.mark.slow
def test_every_stage_beats_its_start_on_what_it_optimises(run):
    run_dir, metrics = run
    paired = metrics["paired_all"]
    assert metrics["models"]["base"]["alignment"]["mean"] < 0.02  # the untrained model draws no shape
    sft = paired["sft"]["base"]["alignment"]
    assert sft["n"] == 1024 and sft["p"] < 0.01 and sft["ci95"][0] > 0.1, sft
    for term in ("alignment", "smoothness"):  # GRPO's reward terms
        gain = paired["rl"]["sft"][term]
        assert gain["p"] < 0.01 and gain["ci95"][0] > 0, (term, gain)
    temporal = {m: paired["pref"]["rl"][m] for m in ("smoothness", "reversal_gap")}
    assert any(d["p"] < 0.01 and d["mean"] > 0 for d in temporal.values()), temporal
    alignment = paired["pref"]["rl"]["alignment"]
    assert not (alignment["p"] < 0.01 and alignment["mean"] < 0), alignment  # no significant loss
    verdicts = {v.stage: v for v in stage_verdicts(collect_run(run_dir), metrics)}
    assert {s: v.verdict for s, v in verdicts.items()} == {"sft": "better", "rl": "better", "pref": "better"}
    assert not [a for v in verdicts.values() for a in v.alarms]


@pytest.mark.slow
def test_sft_lowers_the_held_out_flow_matching_loss(run):
    run_dir, _ = run
    spec = lower(check_file(RECIPE).recipe).job("sft").config.model.model_dump()
    untrained, trained = build_policy(spec, seed=0), build_policy(spec, seed=0)
    trained.load(job_dir(run_dir, "sft") / "artifacts" / "policy")
    before, after = heldout_loss(untrained, spec), heldout_loss(trained, spec)
    assert after < 0.6 * before, (before, after)
