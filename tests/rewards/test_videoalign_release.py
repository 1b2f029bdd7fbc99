"""The released VideoAlign layout: a tiny Qwen2-VL reward with LoRA and special reward tokens, saved as
VideoAlign's trainer saves it (transformers 4.4x tensor names), loads through `r.videoalign`-style specs
and scores what the peft reference model computes by hand."""
from __future__ import annotations

import pytest
import torch

from runtime.errors import JobError
from runtime.rewards import registry
from runtime.rewards.videoalign import VideoAlignModel, canonical_key, merge_lora

from . import released_fixtures as rf
from .conftest import noise_video, square_video

PROMPTS = ["a red square moves right", "static noise"]


def _videos():
    return torch.stack([square_video(frames=4, size=16), noise_video(frames=4, size=16)])


def _spec(folder, base, heads=("vq", "mq", "ta")):
    model = {"name": "qwen", "spec": {"kind": "vision_language", "family": "qwen2_vl", "path": str(base),
                                      "dtype": "fp32", "params": 1, "layers": 1, "hidden": 32}}
    return {"ref": "reward", "name": "va", "head": None, "heads": list(heads),
            "spec": {"kind": "video_reward_model", "model": model, "heads": list(heads), "path": str(folder),
                     "frames": 4}}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("videoalign")
    base = rf.tiny_base(root / "base")
    lora_model, _ = rf.videoalign(root / "lora", base, full=False, seed=1)
    full_model, _ = rf.videoalign(root / "full", base, full=True, seed=2)
    return {"base": base, "lora": (root / "lora", lora_model), "full": (root / "full", full_model)}


def _expected(reward_model: VideoAlignModel, peft_model, videos, prompts) -> dict[str, torch.Tensor]:
    """The reference: the peft model's language-model hidden states through rm_head at each reward token,
    standardised by the release's inference_config."""
    inputs = reward_model.vlm.inputs([reward_model.text(p) for p in prompts], [[v] for v in videos])
    inner = peft_model.base_model.model
    with torch.no_grad():
        hidden = inner.model(**inputs).last_hidden_state
        logits = inner.rm_head(hidden)[..., 0]
    ids = inputs["input_ids"]
    out = {}
    for dim, token in zip(("VQ", "MQ", "TA"), rf.VA_TOKENS):
        tid = reward_model.vlm.tokenizer.convert_tokens_to_ids(token)
        raw = torch.stack([logits[b, (ids[b] == tid).nonzero()[0, 0]] for b in range(len(prompts))])
        out[dim.lower()] = (raw - rf.VA_NORM[f"{dim}_mean"]) / rf.VA_NORM[f"{dim}_std"]
    return out


@pytest.mark.parametrize("layout", ["lora", "full"])
def test_released_layout_loads_and_scores_as_the_reference(release, layout):
    folder, peft_model = release[layout]
    reward = registry.build_reward(_spec(folder, release["base"]))
    scores = reward(_videos(), PROMPTS)
    assert set(scores) == {"vq", "mq", "ta", "overall"}
    expected = _expected(reward.model, peft_model, _videos(), PROMPTS)
    for head, value in expected.items():
        assert torch.allclose(scores[head], value, atol=1e-4), (head, scores[head], value)
    assert torch.allclose(scores["overall"], sum(expected.values()), atol=1e-4)
    assert not torch.allclose(scores["vq"], scores["mq"])  # each dimension reads its own token


def test_lora_deltas_matter(release):
    """Loading the base without merging LoRA would score differently: the merge is doing work."""
    folder, peft_model = release["lora"]
    reward = registry.build_reward(_spec(folder, release["base"]))
    with peft_model.disable_adapter():
        without = _expected(reward.model, peft_model, _videos(), PROMPTS)
    scores = reward(_videos(), PROMPTS)
    assert not torch.allclose(scores["ta"], without["ta"], atol=1e-3)


def test_prompt_places_vq_and_mq_before_the_prompt_and_ta_after(release):
    reward = registry.build_reward(_spec(release["lora"][0], release["base"]))
    text = reward.model.text("PROMPT")
    vq, mq, prompt, ta = (text.index(s) for s in ("<|VQ_reward|>", "<|MQ_reward|>", "PROMPT", "<|TA_reward|>"))
    assert vq < mq < prompt < ta
    assert text.index("<|video_pad|>") < vq


def test_wrong_heads_and_missing_base_are_job_errors(release):
    folder = release["lora"][0]
    with pytest.raises(JobError, match=r"scores \['vq', 'mq', 'ta'\]"):
        registry.build_reward(_spec(folder, release["base"], heads=("visual", "motion", "text")))
    registry.clear_cache()
    spec = _spec(folder, release["base"])
    spec["spec"]["model"]["spec"]["path"] = None
    with pytest.raises(JobError, match="LoRA deltas over Qwen/Qwen2-VL-2B-Instruct"):
        registry.build_reward(spec)


def test_key_names_of_both_transformers_layouts():
    assert canonical_key("base_model.model.model.layers.0.mlp.up_proj.base_layer.weight") == \
        "language_model.layers.0.mlp.up_proj.weight"
    assert canonical_key("base_model.model.model.language_model.norm.weight") == "language_model.norm.weight"
    assert canonical_key("base_model.model.visual.blocks.0.attn.qkv.weight") == "visual.blocks.0.attn.qkv.weight"
    assert canonical_key("base_model.model.model.visual.merger.mlp.0.bias") == "visual.merger.mlp.0.bias"
    assert canonical_key("model.layers.1.self_attn.q_proj.lora_A.default.weight") == \
        "language_model.layers.1.self_attn.q_proj.lora_A.weight"
    assert canonical_key("base_model.model.rm_head.weight") == "rm_head.weight"


def test_merge_lora_against_numbers():
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5], [-1.0]])  # r = 1
    merged = merge_lora({"x.weight": w, "x.lora_A.weight": a, "x.lora_B.weight": b}, alpha=4, rank=1, rslora=False)
    assert torch.equal(merged["x.weight"], torch.tensor([[3.0, 4.0], [-4.0, -7.0]]))
    merged = merge_lora({"x.weight": w, "x.lora_A.weight": a, "x.lora_B.weight": b}, alpha=4, rank=4, rslora=True)
    assert torch.equal(merged["x.weight"], w + 2.0 * b @ a)
