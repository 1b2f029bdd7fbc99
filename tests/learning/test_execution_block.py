"""The runtime executes the plan's execution block (CPU, fp32, torch.distributed over gloo):

- a GRPO stage whose groups do not split over the ranks (3 groups of 4 on 2 processes: 6 rollouts each,
  the middle group on both) runs and reaches the one-process weights; the runtime used to keep groups
  whole per rank and stopped such a job at step 0;
- a stage whose batch the recipe splits into micro-batches (`micro_batch = 1`: one row per forward,
  the gradients accumulated) reaches the weights of the one-forward run, for SFT, DPO and GRPO.
Tolerance: rtol 1e-4, atol 1e-5 (fp32; only the order of the floating-point sums differs)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.learning.test_data_parallel import MODEL, STAGES
from tests.runtime.conftest import job_dir, vpo

pytestmark = pytest.mark.slow

GRPO_3_GROUPS = """reward still = weight_free { metric = temporal_flicker }
reward crisp = weight_free { metric = sharpness }

stage tuned = grpo(tiny) on machine {
  prompts      = shapes.prompts(n = 6, seed = 2)
  reward       = still + crisp
  group_size   = 4
  batch        = 3
  steps        = 2
  sample_steps = 4
  lr           = 1e-3
}"""
BODIES = {**STAGES, "grpo3": GRPO_3_GROUPS}


def recipe(kind: str, gpus: int, micro: int | None) -> str:
    body = BODIES[kind]
    if micro is not None:
        body = body.replace("{\n", f"{{\n  micro_batch = {micro}\n", 1)
    return f"vpo 0.1\nuse std.shapes\n\n{MODEL}\n\ncluster machine = local {{ gpus_per_node = {gpus} }}\n\n{body}\n"


def trained(tmp_path, kind: str, gpus: int = 1, micro: int | None = None) -> tuple[dict, dict]:
    """The stage's weights and the execution block its log says it ran."""
    name = f"{kind}{gpus}m{micro}"
    path = tmp_path / f"{name}.vpo"
    path.write_text(recipe(kind, gpus, micro))
    vpo("run", path, "--run-dir", tmp_path / name, "--progress", "plain", VPO_DEVICE="cpu")
    folder = job_dir(tmp_path / name, "tuned")
    line = next(x for x in (folder / "log.txt").read_text().splitlines() if "execution block:" in x)
    block = json.loads(line[line.index("{"):line.rindex("}") + 1])
    return load_file(str(folder / "artifacts" / "policy" / "weights.safetensors")), block


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        torch.testing.assert_close(b[name], value, rtol=1e-4, atol=1e-5, msg=name)


@pytest.fixture(scope="module")
def grpo_one_forward(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("grpo3"), "grpo3")


def test_grpo_groups_spanning_two_ranks_reach_the_one_process_weights(tmp_path, grpo_one_forward):
    one, one_block = grpo_one_forward
    two, block = trained(tmp_path, "grpo3", gpus=2)
    assert block["world_size"] == 2 and block["rows_per_rank"] == 6 and block["groups_span_ranks"] is True
    assert one_block["world_size"] == 1
    assert_same(one, two)


def test_grpo_micro_batches_accumulate_to_the_one_forward_weights(tmp_path, grpo_one_forward):
    one, one_block = grpo_one_forward
    assert one_block["micro_batch"] == one_block["rows_per_rank"] == 12  # the planner's: one forward
    accumulated, block = trained(tmp_path, "grpo3", micro=1)
    assert (block["micro_batch"], block["grad_accum"], block["micro_batch_pinned"]) == (1, 12, True)
    assert_same(one, accumulated)


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_micro_batches_accumulate_to_the_one_forward_weights(tmp_path, kind):
    one, one_block = trained(tmp_path, kind)
    assert one_block["grad_accum"] == 1 and one_block["micro_batch"] == 4
    accumulated, block = trained(tmp_path, kind, micro=1)
    assert (block["micro_batch"], block["grad_accum"]) == (1, 4)
    assert_same(one, accumulated)
