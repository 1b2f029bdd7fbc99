"""A trainer with `sequence_parallel = 2` on two processes (gloo on the CPU, launched through torchrun by
the local executor): both ranks hold the same rows, each back-propagates half of every video's tokens
(diffusers' Ulysses attention), and the run reaches the weights one process reaches on the same batch."""
from __future__ import annotations

import pytest
import torch

from tests.learning.test_data_parallel import MODEL, STAGES, moved, trained
from tests.runtime.conftest import job_dir, vpo


def split_recipe(kind: str, extra: str = "") -> str:
    stage = STAGES[kind].replace("  lr ", f"  sequence_parallel = 2\n{extra}  lr ", 1)
    return f"vpo 0.1\nuse std.shapes\n\n{MODEL}\n\ncluster machine = local {{ gpus_per_node = 2 }}\n\n{stage}\n"


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The one-process weights of each kind, trained once for the module (ZeRO-2's case reuses SFT's)."""
    done: dict[str, tuple] = {}

    def get(kind: str):
        if kind not in done:
            folder = tmp_path_factory.mktemp(f"one_{kind}")
            done[kind] = (folder, trained(folder, kind, 1))
        return done[kind]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("kind,zero", [("sft", None), ("dpo", None), ("grpo", None), ("sft", 2)])
def test_sequence_parallel_two_matches_one_process(tmp_path, one_process, kind, zero):
    """Also under DeepSpeed ZeRO-2, which averages over every rank: the loss is scaled by k there."""
    from safetensors.torch import load_file

    base, one = one_process(kind)
    path = tmp_path / f"{kind}_sp.vpo"
    path.write_text(split_recipe(kind, f"  zero_stage = {zero}\n" if zero is not None else ""))
    run_dir = tmp_path / f"{kind}_sp"
    out = vpo("run", path, "--run-dir", run_dir, "--progress", "plain", VPO_DEVICE="cpu")
    log = (job_dir(run_dir, "tuned") / "log.txt").read_text()
    assert f"({kind}, 2 processes)" in out.stderr, out.stderr
    assert "sequence parallelism: 2 ranks split each video's tokens (1 data-parallel group)" in log, log
    split = load_file(str(job_dir(run_dir, "tuned") / "artifacts" / "policy" / "weights.safetensors"))
    assert moved(base, kind, one) > 1e-4
    assert split.keys() == one.keys()
    for name, value in one.items():  # fp32; equal up to the order of the gradient sums
        torch.testing.assert_close(split[name], value, rtol=1e-4, atol=1e-5, msg=name)
