"""Two processes (torch.distributed over gloo on the CPU, launched by the local executor through
torchrun) train to the weights one process reaches on the same global batch: each rank draws the whole
batch's noise, trains on its share, and the gradients are averaged before every step."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from tests.runtime.conftest import job_dir, vpo

MODEL = "model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64, frames = 4 }"

STAGES = {
    "sft": """stage tuned = sft(tiny) on machine {
  data  = shapes.videos(n = 16, seed = 1)
  steps = 3
  batch = 4
  lr    = 1e-3
}""",
    "grpo": """reward still = weight_free { metric = temporal_flicker }
reward crisp = weight_free { metric = sharpness }

stage tuned = grpo(tiny) on machine {
  prompts      = shapes.prompts(n = 8, seed = 2)
  reward       = still + crisp  # weight-free, graded on an untrained model's samples
  group_size   = 4
  batch        = 2
  steps        = 2
  sample_steps = 4
  lr           = 1e-3
}""",
    "dpo": """stage tuned = dpo(tiny) on machine {
  pairs = synthetic(shapes.videos(n = 16, seed = 1), negatives = [reverse])
  beta  = 500
  steps = 3
  batch = 4
  lr    = 1e-3
}""",
    # on-policy pairs: generation runs on both processes (each samples its share of the prompts), the
    # judge in one, DPO on both
    "on_policy": """reward crisp = weight_free { metric = sharpness }

stage tuned = dpo(tiny) on machine {
  pairs = on_policy(tiny, prompts = shapes.prompts(n = 5, seed = 3), n = 3, judges = [crisp], sample_steps = 3)
  beta  = 500
  steps = 2
  batch = 4
  lr    = 1e-3
}""",
    # KTO on the judge's tercile labels of on-policy candidates: the reference point is the mean over
    # the gathered global batch, so both ranks use the same one
    "kto": """reward crisp = weight_free { metric = sharpness }

stage tuned = kto(tiny) on machine {
  labels = on_policy(tiny, prompts = shapes.prompts(n = 4, seed = 3), n = 3, judges = [crisp], sample_steps = 3,
                     labels = true)
  beta   = 1000
  steps  = 3
  batch  = 4
  lr     = 1e-3
}""",
    "rwr": """reward crisp = weight_free { metric = sharpness }

stage tuned = rwr(tiny) on machine {
  data   = on_policy(tiny, prompts = shapes.prompts(n = 4, seed = 3), n = 2, judges = [crisp], sample_steps = 3)
  reward = crisp
  tau    = 0.05
  steps  = 3
  batch  = 4
  lr     = 1e-3
}""",
}


def recipe(kind: str, gpus: int) -> str:
    return (f"vpo 0.1\nuse std.shapes\n\n{MODEL}\n\ncluster machine = local {{ gpus_per_node = {gpus} }}\n\n"
            f"{STAGES[kind]}\n")


def trained(tmp_path, kind: str, gpus: int) -> dict[str, torch.Tensor]:
    path = tmp_path / f"{kind}{gpus}.vpo"
    path.write_text(recipe(kind, gpus))
    run_dir = tmp_path / f"{kind}{gpus}"
    out = vpo("run", path, "--run-dir", run_dir, "--progress", "plain", VPO_DEVICE="cpu")
    if gpus > 1:
        assert f"({kind if kind != 'on_policy' else 'dpo'}, {gpus} processes)" in out.stderr, out.stderr
    if gpus > 1 and kind == "on_policy":
        assert f"(generate, {gpus} processes)" in out.stderr and "(judge, 1 process)" in out.stderr, out.stderr
    return load_file(str(job_dir(run_dir, "tuned") / "artifacts" / "policy" / "weights.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sft", "grpo", "dpo", "on_policy", "kto", "rwr"])
def test_two_processes_match_one(tmp_path, kind):
    one, two = trained(tmp_path, kind, 1), trained(tmp_path, kind, 2)
    assert one.keys() == two.keys()
    assert moved(tmp_path, kind, one) > 1e-4
    for name, value in one.items():
        torch.testing.assert_close(two[name], value, rtol=1e-4, atol=1e-5, msg=name)


def moved(tmp_path, kind: str, weights: dict[str, torch.Tensor]) -> float:
    """The largest change from the starting weights (the test means nothing if training did nothing)."""
    from runtime.models.families import build_policy
    from vpolang.api import check_file
    from vpolang.lower import lower

    spec = lower(check_file(tmp_path / f"{kind}1.vpo").recipe).job("tuned").config.model.model_dump()
    start = build_policy(spec, seed=0).transformer.state_dict()
    return max(float((w - start[name]).abs().max()) for name, w in weights.items())
