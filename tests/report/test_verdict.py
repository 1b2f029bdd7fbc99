"""The report's first screen: a verdict per stage (its target metric before -> after, paired interval, p)
and alarms where a stage made its own target worse or its training reward rose while held-out fell."""
from __future__ import annotations

from types import SimpleNamespace

from vpolang.report.page import _verdict_section, split_scales
from vpolang.report.verdict import higher_is_better, judge, stage_verdicts


def diff(mean, p):
    return {"mean": mean, "ci95": [mean - 0.01, mean + 0.01], "t": 5.0 if mean > 0 else -5.0, "p": p, "n": 512}


def run_of(paired_all, models, rl_rewards=()):
    job = lambda id, kind, start, **cfg: SimpleNamespace(  # noqa: E731
        id=id, kind=kind, config={"policy": {"name": start} if start else None, **cfg})
    reward = {"kind": "sum", "terms": [{"reward": {"name": "shapes.alignment"}, "weight": 1.0},
                                       {"reward": {"name": "shapes.smoothness"}, "weight": 0.5}]}
    jobs = [job("sft", "sft", "base"), job("rl", "grpo", "sft", reward=reward), job("pref", "dpo", "rl", pairs={"kind": "synthetic"}),
            job("report", "evaluate", "pref")]
    evaluation = {"models": models, "paired_all": paired_all, "samples": 512}
    records = [SimpleNamespace(job=j, metrics=[{"step": i + 1, "reward_mean": r} for i, r in enumerate(rl_rewards)]
                               if j.id == "rl" else [], evaluation=evaluation if j.id == "report" else None)
               for j in jobs]
    return SimpleNamespace(plan=SimpleNamespace(jobs=jobs), jobs=records), evaluation


METRICS = ("alignment", "smoothness", "reversal_gap")


def models(**means):
    return {name: {m: {"mean": v[i], "ci95": [v[i], v[i]]} for i, m in enumerate(METRICS)} for name, v in means.items()}


def test_judge_and_direction():
    assert judge(diff(0.05, 0.001), True) == "better" and judge(diff(0.05, 0.001), False) == "worse"
    assert judge(diff(-0.05, 0.001), True) == "worse" and judge(diff(0.05, 0.02), True) == "no change"
    assert judge({"mean": float("nan"), "p": 0.0}, True) == "no change"
    assert higher_is_better("alignment") and higher_is_better("reversal_gap") and not higher_is_better("val_loss")


def test_every_stage_better_with_its_own_targets():
    paired = {"sft": {"base": {m: diff(0.3, 0.001) for m in METRICS}},
              "rl": {"sft": {"alignment": diff(0.05, 0.001), "smoothness": diff(0.02, 0.001),
                             "reversal_gap": diff(-0.0001, 0.5)}},
              "pref": {"rl": {"alignment": diff(0.004, 0.3), "smoothness": diff(0.01, 0.001),
                              "reversal_gap": diff(0.003, 0.001)}}}
    run, evaluation = run_of(paired, models(base=(0, 0, 0), sft=(0.3, 0.05, 0), rl=(0.35, 0.07, 0),
                                            pref=(0.354, 0.08, 0.003)), rl_rewards=[0.3] * 10 + [0.4] * 10)
    verdicts = {v.stage: v for v in stage_verdicts(run, evaluation)}
    assert list(verdicts) == ["sft", "rl", "pref"]
    assert [v.verdict for v in verdicts.values()] == ["better"] * 3
    assert [r.metric for r in verdicts["rl"].rows if r.target] == ["alignment", "smoothness"]  # its reward's terms
    assert [r.metric for r in verdicts["pref"].rows if r.target] == ["smoothness", "reversal_gap"]  # temporal
    assert [r.metric for r in verdicts["sft"].rows if r.target] == ["alignment"]
    assert not any(v.alarms for v in verdicts.values())
    html = _verdict_section(run)
    assert html.startswith('<section id="verdict"><h2>Did it work?</h2>') and "ALARM" not in html
    assert html.count('class="verdict-better">better<') == 3 + 7  # three stages, seven better metric rows of nine
    assert "0.3 &rarr; 0.35" in html and "&uarr; higher is better" in html and "(target)" in html


def test_alarms_when_a_stage_hurts_its_target_and_when_training_reward_rose_while_held_out_fell():
    """Issue 18's quickstart: GRPO lowered held-out alignment (-0.042, p < 0.001)."""
    paired = {"sft": {"base": {m: diff(0.05, 0.001) for m in METRICS}},
              "rl": {"sft": {"alignment": diff(-0.042, 0.001), "smoothness": diff(-0.01, 0.2),
                             "reversal_gap": diff(0.0, 1.0)}}}
    run, evaluation = run_of(paired, models(base=(0, 0, 0), sft=(0.047, 0.02, 0), rl=(0.005, 0.01, 0),
                                            pref=(0.005, 0.01, 0)), rl_rewards=[0.02] * 10 + [0.05] * 10)
    verdicts = {v.stage: v for v in stage_verdicts(run, evaluation)}
    assert verdicts["rl"].verdict == "worse" and verdicts["sft"].verdict == "better"
    assert "pref" not in verdicts  # the evaluation has no pref-minus-rl difference
    alarms = verdicts["rl"].alarms
    assert any("made its own target alignment worse" in a for a in alarms)
    assert any("training reward rose" in a and "alignment fell" in a for a in alarms)
    html = _verdict_section(run)
    assert html.count('<div class="alarm">ALARM:') == len(alarms) == 2


def test_no_evaluation_no_verdict_section():
    run, _ = run_of({}, {})
    for r in run.jobs:
        r.evaluation = None
    assert _verdict_section(run) == ""


def test_series_on_different_scales_get_their_own_axes():
    beta, margin = [(s, 500.0) for s in range(5)], [(s, 0.001 * s) for s in range(5)]
    assert split_scales({"other": {"beta": beta, "margin": margin}}) == {"other": {"beta": beta},
                                                                           "other: margin": {"margin": margin}}
    close = {"a": [(0, 0.3), (1, 0.45)], "b": [(0, 0.0), (1, 0.08)]}
    assert split_scales({"reward": close}) == {"reward": close}
