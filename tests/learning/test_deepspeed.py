"""DeepSpeed ZeRO behind the trainers (runtime/trainers/updater.py), on the CPU over gloo: every stage
trains to the weights of the plain torch path (AdamW with clipping, the same global batch), also on two
processes, also GRPO (whose ranks back-propagate different timesteps) and DPO's decoupled backward
(winner-first under ZeRO-2/3); and a ZeRO-2 job stopped mid-run resumes to the uninterrupted weights."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.learning.test_data_parallel import MODEL, STAGES
from tests.runtime.conftest import ROOT, env, job_dir, vpo

pytest.importorskip("deepspeed")
pytestmark = pytest.mark.slow


def recipe(kind: str, gpus: int, zero: int | None, extra: str = "") -> str:
    body = STAGES[kind]
    if zero is not None or extra:
        lines = [f"  zero_stage = {zero}"] if zero is not None else []
        body = body.replace("{\n", "{\n" + "\n".join(lines + ([extra] if extra else [])) + "\n", 1)
    return f"vpo 0.1\nuse std.shapes\n\n{MODEL}\n\ncluster machine = local {{ gpus_per_node = {gpus} }}\n\n{body}\n"


def trained(tmp_path, kind: str, gpus: int, zero: int | None, extra: str = "") -> dict[str, torch.Tensor]:
    name = f"{kind}{gpus}z{zero}"
    path = tmp_path / f"{name}.vpo"
    path.write_text(recipe(kind, gpus, zero, extra))
    out = vpo("run", path, "--run-dir", tmp_path / name, "--progress", "plain", VPO_DEVICE="cpu")
    log = (job_dir(tmp_path / name, "tuned") / "log.txt").read_text()
    assert ("optimiser: torch AdamW" if zero is None else f"optimiser: DeepSpeed ZeRO-{zero}") in log, out.stderr
    return load_file(str(job_dir(tmp_path / name, "tuned") / "artifacts" / "policy" / "weights.safetensors"))


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        torch.testing.assert_close(b[name], value, rtol=1e-4, atol=1e-5, msg=name)


@pytest.fixture(scope="module")
def torch_sft(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("torch_sft"), "sft", 1, None)


@pytest.mark.parametrize("zero", [0, 1, 2, 3])
def test_each_zero_stage_trains_to_the_torch_weights(tmp_path, torch_sft, zero):
    assert_same(torch_sft, trained(tmp_path, "sft", 1, zero))


@pytest.mark.parametrize("kind", ["sft", "grpo"])
def test_two_processes_under_zero2_match_one_torch_process(tmp_path, kind):
    assert_same(trained(tmp_path, kind, 1, None), trained(tmp_path, kind, 2, 2))


def test_decoupled_dpo_under_zero2_matches_torch(tmp_path):
    assert_same(trained(tmp_path, "dpo", 1, None, "  backward = decoupled"),
                trained(tmp_path, "dpo", 1, 2, "  backward = decoupled"))


def test_zero2_job_stopped_mid_run_resumes_to_the_uninterrupted_weights(tmp_path):
    long = "  steps = 400\n  checkpoint_every = 1000"
    path = tmp_path / "long.vpo"
    path.write_text(recipe("sft", 1, 2).replace("  steps = 3\n", long + "\n"))
    straight = tmp_path / "straight"
    vpo("run", path, "--run-dir", straight, "--progress", "plain", VPO_DEVICE="cpu")

    stopped = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "vpolang.cli", "run", str(path), "--run-dir", str(stopped),
                             "--progress", "plain"], cwd=ROOT, env=env(False, VPO_DEVICE="cpu"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    metrics = None
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        found = list(stopped.glob("tuned/*/metrics.jsonl"))
        if found and sum(1 for _ in found[0].open()) >= 20:
            metrics = found[0]
            break
        time.sleep(0.05)
    assert metrics is not None, "the job never reached step 20"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    folder = metrics.parent
    assert not (folder / "artifacts" / "policy").exists(), (folder / "log.txt").read_text()

    vpo("run", path, "--run-dir", stopped, "--progress", "plain", VPO_DEVICE="cpu")
    log = (folder / "log.txt").read_text()
    assert "resumed from checkpoint at step" in log, log
    weights = lambda run: load_file(str(job_dir(run, "tuned") / "artifacts" / "policy" / "weights.safetensors"))  # noqa: E731
    assert_same(weights(straight), weights(stopped))
