"""Lowering: job ids, dependency order, data jobs, resolved configs and content hashes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpolang.api import check_file
from vpolang.lower import lower
from vpolang.plan import Plan, job_hash, load_plan, save_plan, select_jobs
from vpolang.plan_schema import plan_json_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def plan_of(name: str, **overrides) -> Plan:
    result = check_file(EXAMPLES / name, {k: str(v) for k, v in overrides.items()})
    assert result.ok, [d.message for d in result.diagnostics]
    return lower(result.recipe)


def test_ipo_unrolls_rounds_with_generate_judge_dpo_in_order():
    plan = plan_of("ipo.vpo")
    ids = [j.id for j in plan.jobs]
    assert ids[0] == "critic" and ids[-1] == "report"
    for k in (1, 2, 3):
        gen, judge, dpo = f"ipo.r{k}.tuned.pairs.on_policy.generate", f"ipo.r{k}.tuned.pairs.on_policy.judge", \
            f"ipo.r{k}.tuned"
        assert ids.index(gen) < ids.index(judge) < ids.index(dpo)
        assert plan.job(judge).depends_on == sorted(["critic", gen])
        assert plan.job(judge).inputs["reward_model:critic"].job == "critic"
    # round k samples from round k-1's policy; round 1 from the base model
    assert plan.job("ipo.r1.tuned.pairs.on_policy.generate").inputs == {}
    assert plan.job("ipo.r2.tuned.pairs.on_policy.generate").inputs["policy:ipo.r1.tuned"].job == "ipo.r1.tuned"
    assert plan.job("report").config.model_dump()["policy"]["name"] == "ipo.r3.tuned"
    assert [p["name"] for p in plan.job("report").config.model_dump()["against"]] == ["base", "ipo.r1.tuned", "ipo.r2.tuned"]


def test_every_default_is_filled_and_refs_are_linked():
    plan = plan_of("quickstart.vpo")
    rl = plan.job("rl")
    assert rl.config.model_dump()["resolution"] == [8, 8] and rl.config.model_dump()["frames"] == 4  # the model's, from its fields
    assert rl.config.model_dump()["warmup"] is None  # GRPO's default: a quarter of the steps, resolved with them
    assert rl.config.model_dump()["noise_level"] == 0.7 and rl.config.model_dump()["group_size"] == 8
    assert rl.config.model_dump()["policy"]["input"] == "policy:sft" and rl.inputs["policy:sft"].name == "policy"
    pref = plan.job("pref")
    assert pref.config.model_dump()["beta"] == {"kind": "constant", "value": 5000.0}
    assert pref.config.model_dump()["pairs"] == {"kind": "synthetic", "input": "pairs.synthetic"}
    synth = plan.job("pref.pairs.synthetic")
    assert [n["kind"] for n in synth.config.model_dump()["negatives"]] == ["reverse"]


def test_teleboost_mix_lowers_each_source_and_inherits_prompts():
    plan = plan_of("teleboost.vpo")
    gen = plan.job("pref.pairs.on_policy.generate")
    assert gen.config.model_dump()["prompts"] == {"kind": "prompts", "path": "data/prompts/train.txt"}
    pref = plan.job("pref")
    kinds = [s["kind"] for s in pref.config.model_dump()["pairs"]["sources"]]
    assert kinds == ["on_policy", "synthetic", "pairs"]
    assert pref.placement.executor == "slurm" and pref.placement.nodes == 2 and pref.placement.gpus_per_node == 8
    assert pref.placement.time_limit_s == 48 * 3600
    assert plan.job("rl").config.model_dump()["bpgo"]["prior"]["input"] == "policy:sft"


def test_scale_param_changes_steps_and_hashes_downstream():
    base, small = plan_of("teleboost.vpo"), plan_of("teleboost.vpo", scale=0.1)
    assert small.job("sft").config.model_dump()["steps"] == 200 and base.job("sft").config.model_dump()["steps"] == 2000
    assert small.params == {"scale": 0.1}
    for job_id in ("sft", "rl", "pref", "report"):
        assert small.job(job_id).hash != base.job(job_id).hash
    # a job whose config and inputs did not change keeps its hash
    assert small.job("pref.pairs.synthetic").hash == base.job("pref.pairs.synthetic").hash


def test_hash_ignores_placement_but_not_config():
    plan = plan_of("quickstart.vpo")
    job = plan.job("sft").model_copy(deep=True)
    before = job_hash(job, {})
    job.placement.nodes = 4
    assert job_hash(job, {}) == before
    job.config.lr = 2e-3
    assert job_hash(job, {}) != before


def test_plan_round_trips_through_json(tmp_path):
    plan = plan_of("videoalign.vpo")
    save_plan(plan, tmp_path / "plan.json")
    again = load_plan(tmp_path / "plan.json")
    assert again == plan
    assert json.loads(again.to_json()) == json.loads(plan.to_json())


def test_selectors():
    plan = plan_of("quickstart.vpo")
    assert [j.id for j in select_jobs(plan, "rl")] == ["rl"]
    assert [j.id for j in select_jobs(plan, "rl+")] == ["rl", "pref", "report"]
    assert [j.id for j in select_jobs(plan, "+rl")] == ["sft", "rl"]
    assert {j.id for j in select_jobs(plan, "pref")} == {"pref", "pref.pairs.synthetic"}
    with pytest.raises(KeyError):
        select_jobs(plan, "nope")


def test_incompatible_plan_version_is_refused(tmp_path):
    plan = plan_of("quickstart.vpo")
    data = json.loads(plan.to_json())
    # a newer major or minor; older majors (3.x: untyped configs; 2.x: reward_execution described; 1.x: no
    # execution blocks)
    for version in ("5.0", "4.2", "3.0", "2.0", "1.0"):
        data["schema_version"] = version
        (tmp_path / "p.json").write_text(json.dumps(data))
        with pytest.raises(ValueError, match="cannot be read"):
            load_plan(tmp_path / "p.json")


def test_plan_json_schema_file_is_current():
    committed = (ROOT / "spec" / "plan.schema.json").read_text()
    assert committed == plan_json_schema(), \
        "spec/plan.schema.json is stale: run `python -m vpolang.plan_schema > spec/plan.schema.json`"


def test_kto_iterates_on_judged_labels_and_rwr_samples_without_a_judge(tmp_path):
    recipe = tmp_path / "r.vpo"
    recipe.write_text("""vpo 0.1
use std.shapes

reward crisp = weight_free { metric = sharpness }

iterate rounds_of(policy = shapes.tiny_dit) rounds 2 {
  stage tuned = kto(policy) {
    labels = on_policy(policy, prompts = shapes.prompts(n = 8), n = 3, judges = [crisp], labels = true)
    lr     = 1e-4
  }
  next policy = tuned
}

stage weighted = rwr(rounds_of.policy) {
  data   = on_policy(rounds_of.policy, prompts = shapes.prompts(n = 8), n = 2, judges = [crisp])
  reward = crisp
  lr     = 1e-4
}
""")
    result = check_file(recipe)
    assert result.ok, [d.message for d in result.diagnostics]
    plan = lower(result.recipe)
    judge2 = plan.job("rounds_of.r2.tuned.labels.on_policy.judge")
    assert judge2.config.model_dump()["labels"] is True
    assert plan.job("rounds_of.r2.tuned.labels.on_policy.generate").inputs["policy:rounds_of.r1.tuned"].job == \
        "rounds_of.r1.tuned"
    assert plan.job("rounds_of.r2.tuned").config.model_dump()["labels"]["input"] == "labels.on_policy"
    # RWR weighs the candidates by its own reward: a generate job, no judge
    ids = [j.id for j in plan.jobs]
    assert "weighted.data.on_policy.generate" in ids and "weighted.data.on_policy.judge" not in ids
    assert plan.job("weighted").inputs["data.on_policy"].name == "videos"
