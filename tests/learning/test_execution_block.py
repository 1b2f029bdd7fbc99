"""The runtime executes the plan's execution block (CPU, fp32, torch.distributed over gloo):

- a GRPO stage whose groups do not split over the ranks (3 groups of 4 on 2 processes: 6 rollouts each,
  the middle group on both) runs and reaches the one-process weights; the runtime used to keep groups
  whole per rank and stopped such a job at step 0;
- a stage whose batch the recipe splits into micro-batches (`micro_batch = 1`: one row per forward,
  the gradients accumulated) reaches the weights of the one-forward run, for SFT, DPO, GRPO, KTO and
  reward models.
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


KTO = """stage tuned = kto(tiny) {
  labels = labels("labels/labels.jsonl")
  beta   = 20
  steps  = 2
  batch  = 4
  lr     = 1e-3
}"""

RM = """stage rm = reward_model(backbone) {
  pairs  = pairs("pairs/pairs.jsonl")
  labels = labels("labels/labels.jsonl")
  dims   = [overall, motion]
  frames = 4
  MICRO
  batch  = 4
  lr     = 1e-3
}"""


def test_kto_micro_batches_accumulate_to_the_one_forward_weights(tmp_path):
    """KTO's reference point is the batch's mean implicit reward: with accumulation it comes from a
    no-grad pass over the whole share first, so the loss of every micro-batch uses the same one."""
    from runtime.data.labels import LabelSet, write_labels
    from runtime.shapes.data import videos

    prompts, clips = videos(8, seed=0)
    write_labels(tmp_path / "labels", LabelSet(prompts, clips, ["good", "bad"] * 4))
    out = {}
    for micro in (None, 1):
        body = KTO if micro is None else KTO.replace("{\n", f"{{\n  micro_batch = {micro}\n", 1)
        path = tmp_path / f"kto{micro}.vpo"
        path.write_text(f"vpo 0.1\nuse std.shapes\n\n{MODEL}\n\n{body}\n")
        vpo("run", path, "--run-dir", tmp_path / f"run{micro}", "--progress", "quiet", VPO_DEVICE="cpu")
        folder = job_dir(tmp_path / f"run{micro}", "tuned")
        out[micro] = load_file(str(folder / "artifacts" / "policy" / "weights.safetensors"))
        assert ("x 1 (pinned) x 4 accum" if micro else "x 4 x 1 accum") in (folder / "log.txt").read_text()
    assert_same(out[None], out[1])


def test_reward_model_micro_batches_accumulate_to_the_one_forward_weights(tmp_path):
    """Both pinned: the planner sizes the tiny backbone as the 2B catalogue model and would pick 1."""
    from runtime.data.labels import LabelSet, write_labels
    from runtime.data.pairs import write_pairs
    from runtime.rewards.tiny import tiny_qwen_vl
    from runtime.shapes.data import videos

    tiny_qwen_vl(tmp_path / "qwen", seed=0)
    prompts, clips = videos(8, seed=0, frames=4)
    noise = torch.rand(clips.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    write_pairs(tmp_path / "pairs", prompts, clips, noise, meta=[{"motion": "rejected"}] * 8)
    write_labels(tmp_path / "labels", LabelSet(prompts[:4] * 2, torch.cat([clips[:4], noise[:4]]),
                                               ["good"] * 4 + ["bad"] * 4))
    out = {}
    for micro in (4, 1):
        body = RM.replace("MICRO", f"micro_batch = {micro}")
        path = tmp_path / f"rm{micro}.vpo"
        backbone = 'model backbone = models.qwen2_vl_2b { family = tiny, path = "qwen" }'
        path.write_text(f"vpo 0.1\nuse std.models\n\n{backbone}\n\n{body}\n")
        vpo("run", path, "--run-dir", tmp_path / f"run{micro}", "--progress", "quiet", VPO_DEVICE="cpu")
        folder = job_dir(tmp_path / f"run{micro}", "rm")
        assert f"x {micro} (pinned) x {4 // micro} accum" in (folder / "log.txt").read_text()
        out[micro] = {f"{f.name}/{k}": v for f in sorted((folder / "artifacts" / "reward_model").rglob("*.safetensors"))
                      for k, v in load_file(str(f)).items()}  # the backbone and the heads
    assert_same(out[4], out[1])
