"""Released CLIP-based scorers in their own layouts: LAION's improved aesthetic predictor (an MLP state
dict saved as `layers.N.*`, linearMSE and reluMSE) and PickScore (a transformers CLIP folder scored as
exp(logit_scale) * cosine), each checked against the model's own forward."""
from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

from runtime.errors import JobError
from runtime.rewards import registry

from .conftest import noise_video, square_video

PROMPTS = ["a red square moving right", "static noise on a screen"]


def _videos():
    return torch.stack([square_video(frames=4, size=40, step=2.0), noise_video(frames=4, size=40)])


def _laion(dim: int, relu: bool, seed: int) -> nn.Sequential:
    """The predictor's topology at tiny widths (dim -> 24 -> 12 -> 8 -> 4 -> 1)."""
    torch.manual_seed(seed)
    if relu:
        return nn.Sequential(nn.Linear(dim, 24), nn.ReLU(), nn.Dropout(0.2), nn.Linear(24, 12), nn.ReLU(),
                             nn.Dropout(0.2), nn.Linear(12, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 4),
                             nn.ReLU(), nn.Linear(4, 1))
    return nn.Sequential(nn.Linear(dim, 24), nn.Dropout(0.2), nn.Linear(24, 12), nn.Dropout(0.2), nn.Linear(12, 8),
                         nn.Dropout(0.1), nn.Linear(8, 4), nn.Linear(4, 1))


class _Predictor(nn.Module):  # the released file is the state dict of a module holding `layers`
    def __init__(self, layers):
        super().__init__()
        self.layers = layers


def _ref(kind, path, **extra):
    return {"ref": "reward", "name": kind, "head": None, "heads": None,
            "spec": {"kind": kind, "path": str(path), "frames": 4, **extra}}


@pytest.mark.parametrize("relu", [False, True], ids=["linearMSE", "reluMSE"])
def test_laion_predictor_scores_as_its_mlp_on_unit_clip_embeddings(models, tmp_path, relu):
    folder = tmp_path / "clip-l14"
    shutil.copytree(models["clip"], folder)
    predictor = _Predictor(_laion(16, relu, seed=3)).eval()
    torch.save(predictor.state_dict(), folder / "sac+logos+ava1-l14-linearMSE.pth")
    reward = registry.build_reward(_ref("aesthetic", folder, head="sac+logos+ava1-l14-linearMSE.pth"))
    scores = reward(_videos(), PROMPTS)["aesthetic"]
    enc = reward.encoder
    with torch.no_grad():
        x = enc.image_embeds(_videos().flatten(0, 1))  # preprocessing shared with clip_score's own test
        raw = enc.model.get_image_features(pixel_values=_pixels(enc, _videos()))
        raw = raw if isinstance(raw, torch.Tensor) else raw.pooler_output
        assert torch.allclose(x, raw / raw.norm(dim=-1, keepdim=True), atol=1e-5)
        expected = predictor.layers(x).view(2, 4).mean(1)
    assert torch.allclose(scores, expected, atol=1e-5)
    assert not torch.allclose(scores[0], scores[1])


def _pixels(enc, videos):
    from runtime.rewards.pixels import normalize, resize_center_crop, to_unit

    frames = videos.flatten(0, 1)
    return normalize(resize_center_crop(to_unit(frames), enc.side, enc.crop), enc.mean, enc.std)


def test_laion_predictor_of_the_wrong_width_or_layout_is_a_job_error(models, tmp_path):
    folder = tmp_path / "clip"
    shutil.copytree(models["clip"], folder)
    torch.save(_Predictor(_laion(768, False, 0)).state_dict(), folder / "l14.pth")
    with pytest.raises(JobError, match="takes 768-d embeddings; this CLIP model gives 16-d"):
        registry.build_reward(_ref("aesthetic", folder, head="l14.pth"))
    registry.clear_cache()
    torch.save({"layers.0.weight": torch.zeros(4, 16), "layers.0.bias": torch.zeros(4),
                "layers.1.weight": torch.zeros(1, 4), "layers.1.bias": torch.zeros(1)}, folder / "odd.pth")
    with pytest.raises(JobError, match=r"linear layers at positions \[0, 1\]"):
        registry.build_reward(_ref("aesthetic", folder, head="odd.pth"))


def test_pickscore_is_the_models_own_logits_per_text(models):
    reward = registry.build_reward(_ref("clip_score", models["clip"], logit_scale=True))
    scores = reward(_videos(), PROMPTS)["clip_score"]
    enc = reward.encoder
    tok = enc.tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():  # CLIPModel's forward: logits_per_text = exp(logit_scale) * text . image (unit norm)
        out = enc.model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                        pixel_values=_pixels(enc, _videos()))
    per_frame = out.logits_per_text.view(2, 2, 4)  # (text, video, frame)
    expected = torch.stack([per_frame[i, i].mean() for i in range(2)])
    assert torch.allclose(scores, expected, atol=1e-4)
    assert not reward.bounded
    plain = registry.build_reward(_ref("clip_score", models["clip"]))(_videos(), PROMPTS)["clip_score"]
    assert torch.allclose(scores, plain * enc.model.logit_scale.exp(), atol=1e-4)
