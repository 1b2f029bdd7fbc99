"""Health alarms where a run is watched: `vpo run`'s live progress (each alarm once, when first raised)
and `vpo status`."""
from __future__ import annotations

import json

from runtime import progress as progress_module
from runtime.api import show_status
from runtime.progress import Progress
from runtime.rundir import RunDir
from vpolang.plan import save_plan

from .conftest import toy_job, toy_plan


def collapse(n: int) -> list[dict]:
    return [{"step": i + 1, "time": 1000.0 + i, "reward_mean": 0.026 - 0.00085 * i, "kl": 0.001 * (1 + i)}
            for i in range(n)]


def test_progress_shows_each_alarm_once_and_status_lists_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "ALARMS_EVERY_S", 0.0)
    plan = toy_plan(tmp_path / "toy.vpo", [toy_job("rl", kind="grpo", steps=100)])
    run = RunDir(tmp_path / "run")
    save_plan(plan, run.plan_path)
    job = plan.job("rl")
    folder = run.job(job)
    folder.root.mkdir(parents=True)
    view = Progress("plain", total=1)
    for n in (4, 20, 28):  # too short to judge a trend, then the collapse, then more of it
        folder.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in collapse(n)))
        view.tick(job, folder)
    shown = [line for line in capsys.readouterr().err.splitlines() if "kl_without_reward" in line]
    assert len(shown) == 1 and shown[0].startswith("[0/1] rl: warning [kl_without_reward] at step 20")
    assert show_status(run.root) == 0
    out = capsys.readouterr().out
    assert "rl: warning [kl_without_reward] at step 28: KL rose" in " ".join(out.split())
