"""The report's health section and validation curves, from a crafted run directory (no training)."""
from __future__ import annotations

import json

from runtime.rundir import RunDir
from vpolang.plan import save_plan
from vpolang.report import render_report

from tests.runtime.conftest import toy_job, toy_plan


def test_alarms_and_validation_curves_are_on_the_page(tmp_path):
    plan = toy_plan(tmp_path / "toy.vpo", [toy_job("rl", kind="grpo", steps=28)])
    run = RunDir(tmp_path / "run")
    save_plan(plan, run.plan_path)
    folder = run.job(plan.job("rl"))
    folder.root.mkdir(parents=True)
    with folder.metrics_path.open("w") as out:
        for i in range(28):  # the quickstart's collapse: alignment falls while KL climbs
            record = {"step": i + 1, "reward_mean": 0.026 - 0.00085 * i, "kl": 0.001 * (1 + i), "loss": 0.1}
            if (i + 1) % 7 == 0:
                record["val/alignment"] = 0.03 - 0.001 * i
            out.write(json.dumps(record) + "\n")
    page = render_report(run.root)
    health = page[page.index('<section id="health">'):page.index('<section id="curves">')]
    assert "kl_without_reward" in health and 'class="alarm-warning"' in health
    chart = page[page.index('aria-label="rl: reward"'):]
    assert "val/alignment" in chart[:chart.index("</svg>")]  # drawn beside the training reward
