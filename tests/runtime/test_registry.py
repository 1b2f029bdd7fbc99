"""The trainer registry: every job kind of the plan, lazy targets, test and plugin trainers."""
from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from runtime import registry
from runtime.errors import JobError
from vpolang.plan import JobKind

from .conftest import ROOT, env


def test_every_plan_job_kind_has_a_lazy_trainer_target():
    assert set(registry.KINDS) == set(typing.get_args(JobKind))
    for kind in registry.KINDS:
        assert registry.TRAINERS[kind] == f"runtime.trainers.{kind}:run"


def test_register_and_resolve(monkeypatch):
    monkeypatch.setitem(registry.TRAINERS, "sft", "tests.runtime.toy:run")
    from tests.runtime import toy

    assert registry.trainer_for("sft") is toy.run and registry.supports_distributed(toy.run)

    def single(ctx):
        return None

    registry.register("sft", single)
    assert registry.trainer_for("sft") is single and not registry.supports_distributed(single)


def test_a_kind_whose_trainer_module_is_absent_is_a_user_error(monkeypatch):
    monkeypatch.setitem(registry.TRAINERS, "kto", "runtime.trainers.no_such_trainer:run")
    with pytest.raises(JobError, match=r"no trainer for `kto` jobs yet .*it runs: .*sft"):
        registry.trainer_for("kto")
    assert "kto" not in registry.available_kinds()


def test_job_processes_take_trainers_from_the_environment():
    code = "from runtime import registry; print(registry.trainer_for('dpo').__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env(toy=True))
    assert out.stdout.strip() == "tests.runtime.toy", out.stderr


def test_single_process_kinds_agree_with_the_compiler():
    """The plan's list of one-process kinds (lowering places them on one GPU) is the runtime's: every
    other trainer is data parallel."""
    from vpolang.plan import SINGLE_PROCESS_KINDS

    for kind in registry.KINDS:
        assert registry.supports_distributed(registry.trainer_for(kind)) == (kind not in SINGLE_PROCESS_KINDS), kind
