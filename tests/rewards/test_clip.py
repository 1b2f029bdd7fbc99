"""CLIP score and the aesthetic predictor on a tiny CLIP saved and loaded with the real code."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from runtime.errors import JobError
from runtime.rewards.clip import AESTHETIC_HEAD, ClipEncoder, load_aesthetic, load_clip_score

from .conftest import noise_video, square_video

PROMPTS = ["a red square moving right", "static noise on a screen"]


def videos():
    return torch.stack([square_video(frames=6, size=40, step=2.0), noise_video(frames=6, size=40)])


def test_clip_score_is_the_mean_frame_text_cosine_of_the_model_itself(models):
    reward = load_clip_score(models["clip"], frames=3)
    out = reward(videos(), PROMPTS)["clip_score"]
    enc = reward.encoder
    # the model's own forward: logits_per_image = exp(logit_scale) * cosine(image, text)
    frames = videos()[:, [0, 2, 5]]  # 3 evenly spaced of 6 frames
    pixels = (F.interpolate((frames.flatten(0, 1) + 1) / 2, size=(32, 32), mode="bicubic", antialias=True) -
              torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)) / \
        torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    tok = enc.tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = enc.model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                           pixel_values=pixels).logits_per_image / enc.model.logit_scale.exp()
    expected = torch.stack([logits[0:3, 0].mean(), logits[3:6, 1].mean()])
    assert torch.allclose(out, expected, atol=1e-5)
    assert bool((out.abs() <= 1).all())


def test_the_tokenizer_wraps_prompts_so_clip_pools_at_the_end_token(models):
    enc = ClipEncoder(models["clip"])
    ids = enc.tokenizer(["ab"])["input_ids"][0]
    assert ids[0] == enc.model.config.text_config.bos_token_id and ids[-1] == enc.model.config.text_config.eos_token_id


def test_long_prompts_are_truncated_to_the_text_context(models):
    reward = load_clip_score(models["clip"], frames=2)
    out = reward(videos(), ["word " * 500, "x"])["clip_score"]
    assert torch.isfinite(out).all()


def test_clip_score_is_differentiable_in_the_pixels(models):
    reward = load_clip_score(models["clip"], frames=2)
    v = videos().requires_grad_(True)
    reward.score(v, PROMPTS)["clip_score"].sum().backward()
    assert v.grad is not None and float(v.grad.abs().sum()) > 0


def test_aesthetic_is_the_linear_head_on_normalised_image_embeddings(models):
    reward = load_aesthetic(models["clip"], frames=6)
    out = reward(videos(), PROMPTS)["aesthetic"]
    with torch.no_grad():
        emb = reward.encoder.image_embeds(videos().flatten(0, 1))
        expected = reward.head(emb).view(2, 6).mean(1)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(12), atol=1e-5)
    assert not torch.allclose(out[0], out[1])


def test_aesthetic_needs_its_head_file_of_the_right_shape(models, tmp_path):
    import shutil

    folder = tmp_path / "clip"
    shutil.copytree(models["clip"], folder)
    (folder / AESTHETIC_HEAD).unlink()
    with pytest.raises(JobError, match=f"{AESTHETIC_HEAD} is missing"):
        load_aesthetic(folder, 4)
    save_file({"weight": torch.zeros(1, 7), "bias": torch.zeros(1)}, str(folder / AESTHETIC_HEAD))
    with pytest.raises(JobError, match=r"expected a linear head with `weight` \(1, 16\)"):
        load_aesthetic(folder, 4)
