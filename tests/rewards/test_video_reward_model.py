"""The VideoAlign-style reward model: per-head scores with gradients, save/load, the reward wrapper."""
from __future__ import annotations

import json

import pytest
import torch

from runtime.algorithms.metrics import bradley_terry_loss
from runtime.errors import JobError
from runtime.rewards.video_reward_model import META, VideoRewardModel, load_reward_model

from .conftest import noise_video, square_video

HEADS = ["vq", "mq", "ta"]


def videos():
    return torch.stack([square_video(frames=4, size=16, step=1.0), noise_video(frames=4, size=16)])


def test_forward_gives_every_head_with_gradients_to_heads_backbone_and_pixels(models):
    model = VideoRewardModel.from_backbone(models["qwen2_vl"], HEADS, frames=4)
    v = videos().requires_grad_(True)
    out = model(v, ["a square", "noise"])
    assert list(out) == HEADS and all(s.shape == (2,) and s.dtype == torch.float32 for s in out.values())
    sum(s.sum() for s in out.values()).backward()
    assert model.head.weight.grad is not None and float(model.head.weight.grad.abs().sum()) > 0
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.backbone.parameters())
    assert v.grad is not None and float(v.grad.abs().sum()) > 0


def test_a_llava_layout_backbone_vilas_architecture_scores_trains_and_reloads(models, tmp_path):
    """The `vila` and `llava` families load through transformers' Llava classes (VILA is that
    architecture: a vision tower, a projector and a LLaMA-family language model); each frame is shown
    as an image. Gradients reach the heads, the backbone and the pixels; a saved model scores the same."""
    model = VideoRewardModel.from_backbone(models["llava"], HEADS, frames=4, seed=3)
    assert type(model.backbone).__name__ == "LlavaModel" and model.text("p").endswith("ASSISTANT:")
    v = videos().requires_grad_(True)
    out = model(v, ["a square", "noise"])
    sum(s.sum() for s in out.values()).backward()
    assert float(model.head.weight.grad.abs().sum()) > 0 and float(v.grad.abs().sum()) > 0
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.backbone.vision_tower.parameters())
    with torch.no_grad():
        model.head.weight.normal_()
        before = model(videos(), ["a", "b"])
    model.save(tmp_path / "rm")
    with torch.no_grad():
        after = VideoRewardModel.load(tmp_path / "rm")(videos(), ["a", "b"])
    assert all(torch.allclose(before[h], after[h], atol=1e-5) for h in HEADS)
    assert not torch.allclose(before["vq"][0], before["vq"][1])  # the two videos are told apart


def test_bradley_terry_steps_teach_a_preference(models):
    torch.manual_seed(0)
    model = VideoRewardModel.from_backbone(models["qwen2_vl"], ["vq"], frames=4)
    model.backbone.requires_grad_(False)
    opt = torch.optim.Adam(model.head.parameters(), lr=0.05)
    good, bad = videos()[:1], videos()[1:]
    for _ in range(10):
        loss = bradley_terry_loss(model(good, ["p"])["vq"], model(bad, ["p"])["vq"], torch.ones(1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float(model(good, ["p"])["vq"] - model(bad, ["p"])["vq"]) > 0.5


def test_save_then_load_scores_identically(models, tmp_path):
    model = VideoRewardModel.from_backbone(models["qwen2_vl"], HEADS, frames=4, seed=3)
    with torch.no_grad():
        model.head.weight.normal_()
        before = model(videos(), ["a", "b"])
    model.save(tmp_path / "rm")
    meta = json.loads((tmp_path / "rm" / META).read_text())
    assert meta["heads"] == HEADS and meta["frames"] == 4
    loaded = VideoRewardModel.load(tmp_path / "rm")
    with torch.no_grad():
        after = loaded(videos(), ["a", "b"])
    for head in HEADS:
        assert torch.allclose(before[head], after[head], atol=1e-5)


def test_the_reward_wrapper_returns_heads_and_overall(models):
    reward = load_reward_model(models["rm_va"], "rm", HEADS)
    out = reward(videos(), ["a", "b"])
    assert set(out) == {*HEADS, "overall"}
    assert torch.allclose(out["overall"], out["vq"] + out["mq"] + out["ta"])
    assert reward.needs.device == "gpu" and reward.needs.max_batch == 4


def test_heads_must_match_the_recipe(models):
    with pytest.raises(JobError, match=r"names heads \['vq', 'mq'\] but the model .* has \['vq', 'mq', 'ta'\]"):
        load_reward_model(models["rm_va"], "rm", ["vq", "mq"])


def test_a_folder_without_a_saved_model_is_refused(tmp_path):
    with pytest.raises(JobError, match="not a saved video reward model"):
        VideoRewardModel.load(tmp_path)
    (tmp_path / META).write_text(json.dumps({"format": "something-else/9"}))
    with pytest.raises(JobError, match="format 'something-else/9'"):
        VideoRewardModel.load(tmp_path)
