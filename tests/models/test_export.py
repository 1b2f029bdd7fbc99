"""A saved policy is also a model diffusers loads by itself: a pipeline folder, and a LoRA file that
`load_lora_weights` applies (the chain of LoRA stages flattened into one)."""
from __future__ import annotations

import json

import pytest
import torch

from runtime.models import export
from runtime.models.wan import ExpertPair
from vpolang.atomic import atomic_folder

from .conftest import load
from .test_training_state import outputs, train_steps


def pipeline_transformer(pipe):
    """The pipeline's denoiser in the policy's shape (Wan 2.2: its two experts behind one module)."""
    if getattr(pipe, "transformer_2", None) is not None:
        return ExpertPair(pipe.transformer, pipe.transformer_2, pipe.config.boundary_ratio)
    return pipe.transformer


def diffusers_pipeline(folder):
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(folder / export.PIPELINE_DIR)


@pytest.mark.parametrize("name", ["wan", "wan22"])
def test_a_full_finetune_exports_a_pipeline_diffusers_loads(folders, name, tmp_path):
    policy = load(folders, name)
    train_steps(policy, steps=1)
    vae_mode = (folders[name] / "vae" / "config.json").stat().st_mode
    with atomic_folder(tmp_path / "policy") as tmp:  # as a trainer's save_policy writes it
        policy.save(tmp)
    assert (folders[name] / "vae" / "config.json").stat().st_mode == vae_mode  # the base is never touched
    meta = json.loads((tmp_path / "policy" / "policy.json").read_text())
    assert meta["diffusers"] == {"pipeline": "pipeline", "lora": None}
    pipe = diffusers_pipeline(tmp_path / "policy")
    trained = policy.transformer.state_dict()
    experts = {"transformer": "high.", "transformer_2": "low."} if name == "wan22" else {"transformer": ""}
    for component, prefix in experts.items():
        theirs = getattr(pipe, component).state_dict()
        assert theirs.keys() == {k[len(prefix):] for k in trained if k.startswith(prefix)}
        assert all(torch.equal(theirs[k[len(prefix):]], v) for k, v in trained.items() if k.startswith(prefix))
    assert torch.equal(outputs(policy, pipeline_transformer(pipe)), outputs(policy))
    assert not torch.allclose(outputs(load(folders, name)), outputs(policy), atol=1e-4)  # it is not the base
    if name != "wan22":  # one copy on disk: the policy's weight file is the pipeline's
        weights = tmp_path / "policy" / "weights.safetensors"
        assert weights.samefile(tmp_path / "policy" / "pipeline" / "transformer" / export.MODEL_FILE)
    assert (tmp_path / "policy" / "pipeline" / "vae").is_symlink()  # untouched components are not copied
    restored = load(folders, name)
    restored.load(tmp_path / "policy")  # vpo's own chaining still reads policy.json
    assert torch.equal(outputs(restored), outputs(policy))
    video = pipe("a red cat", num_frames=5, height=32, width=32, num_inference_steps=2, guidance_scale=1.0,
                 output_type="pt", generator=torch.Generator().manual_seed(0)).frames
    assert video.shape[-3:] == (3, 32, 32) and torch.isfinite(video).all()


@pytest.mark.parametrize("name,first", [("wan22", "lora"), ("cogvideox", "full")])
def test_a_chain_of_stages_exports_one_lora_that_load_lora_weights_applies(folders, name, first, tmp_path):
    """Stage 1 (LoRA rank 4 alpha 8, or a full fine-tune), then stage 2 with LoRA rank 2 on top: the
    stage-2 export's pipeline plus its one LoRA file gives the stage-2 policy's outputs."""
    stage1 = load(folders, name)
    if first == "lora":
        stage1.add_lora(4, alpha=8)
    train_steps(stage1, steps=1)
    stage1.save(tmp_path / "stage1")
    stage2 = load(folders, name)
    stage2.load(tmp_path / "stage1")
    stage2.add_lora(2)
    train_steps(stage2, steps=1, lr=3e-2)
    stage2.save(tmp_path / "stage2")
    meta = json.loads((tmp_path / "stage2" / "policy.json").read_text())
    files = meta["diffusers"]["lora"]
    assert files["transformer"] == "lora/pytorch_lora_weights.safetensors"
    pipe = diffusers_pipeline(tmp_path / "stage2")
    before = outputs(stage2, pipeline_transformer(pipe))
    # the pipeline alone is what the adapter applies to: the base, or the full fine-tune before it
    assert torch.allclose(before, outputs(stage1 if first == "full" else load(folders, name)), atol=1e-5)
    pipe.load_lora_weights(tmp_path / "stage2" / export.LORA_DIR)
    if name == "wan22":
        pipe.load_lora_weights(tmp_path / "stage2" / export.LORA_DIR, weight_name=export.LORA_FILE_2,
                               load_into_transformer_2=True)
    after = outputs(stage2, pipeline_transformer(pipe))
    assert not torch.allclose(after, before, atol=1e-4)  # the adapter was applied...
    assert torch.allclose(after, outputs(stage2), atol=1e-5)  # ...and is the trained policy's


def test_flattening_sums_each_stages_scaled_update():
    gen = torch.Generator().manual_seed(0)
    a1, b1, a2, b2 = (torch.randn(s, generator=gen) for s in ((4, 6), (5, 4), (2, 6), (5, 2)))
    key = "blocks.0.attn1.to_q.lora_{}.default.weight"
    chain = [({key.format("A"): a1, key.format("B"): b1}, {"rank": 4, "alpha": 8}),
             ({key.format("A"): a2, key.format("B"): b2, "blocks.0.attn1.to_k.lora_A.default.weight": a2,
               "blocks.0.attn1.to_k.lora_B.default.weight": b2}, {"rank": 2, "alpha": 1})]
    flat, rank = export.flatten_lora_chain(chain)
    assert rank == 6
    q = flat["blocks.0.attn1.to_q.lora_B.weight"] @ flat["blocks.0.attn1.to_q.lora_A.weight"]
    assert torch.allclose(q, 2 * b1 @ a1 + 0.5 * b2 @ a2)
    k = flat["blocks.0.attn1.to_k.lora_B.weight"] @ flat["blocks.0.attn1.to_k.lora_A.weight"]
    assert torch.allclose(k, 0.5 * b2 @ a2) and flat["blocks.0.attn1.to_k.lora_A.weight"].shape == (6, 6)
