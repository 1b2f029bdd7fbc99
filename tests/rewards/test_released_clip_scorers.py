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


def _open_clip_layout(model) -> dict[str, torch.Tensor]:
    """A transformers CLIPModel's weights under open_clip's names (its VisionTransformer / TextTransformer:
    conv1, class_embedding, ln_pre, transformer.resblocks.N.{ln_1, attn.in_proj_*, attn.out_proj, ln_2,
    mlp.c_fc, mlp.c_proj}, ln_post, proj; token_embedding, positional_embedding, ln_final, text_projection),
    as HPSv2 saves them, plus the attn_mask buffer open_clip keeps."""
    sd, out = model.state_dict(), {}
    for tower, prefix in (("vision_model", "visual.transformer"), ("text_model", "transformer")):
        for i in range(len(getattr(model, tower).encoder.layers)):
            src, dst = f"{tower}.encoder.layers.{i}.", f"{prefix}.resblocks.{i}."
            for kind in ("weight", "bias"):
                out[dst + f"attn.in_proj_{kind}"] = torch.cat([sd[src + f"self_attn.{p}_proj.{kind}"] for p in "qkv"])
                for a, b in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("attn.out_proj", "self_attn.out_proj"),
                             ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                    out[dst + f"{a}.{kind}"] = sd[src + f"{b}.{kind}"]
    out.update({"visual.conv1.weight": sd["vision_model.embeddings.patch_embedding.weight"],
                "visual.class_embedding": sd["vision_model.embeddings.class_embedding"],
                "visual.positional_embedding": sd["vision_model.embeddings.position_embedding.weight"],
                "visual.ln_pre.weight": sd["vision_model.pre_layrnorm.weight"],
                "visual.ln_pre.bias": sd["vision_model.pre_layrnorm.bias"],
                "visual.ln_post.weight": sd["vision_model.post_layernorm.weight"],
                "visual.ln_post.bias": sd["vision_model.post_layernorm.bias"],
                "visual.proj": sd["visual_projection.weight"].t().contiguous(),
                "token_embedding.weight": sd["text_model.embeddings.token_embedding.weight"],
                "positional_embedding": sd["text_model.embeddings.position_embedding.weight"],
                "ln_final.weight": sd["text_model.final_layer_norm.weight"],
                "ln_final.bias": sd["text_model.final_layer_norm.bias"],
                "text_projection": sd["text_projection.weight"].t().contiguous(),
                "logit_scale": sd["logit_scale"], "attn_mask": torch.zeros(4, 4)})
    return out


def test_hpsv2_open_clip_weights_score_as_the_same_clip_in_transformers(models, tmp_path):
    reference = registry.build_reward(_ref("clip_score", models["clip"]))
    expected = reference(_videos(), PROMPTS)["clip_score"]
    folder = tmp_path / "vit-h"
    shutil.copytree(models["clip"], folder)
    (folder / "model.safetensors").unlink()  # only the open_clip file holds weights now
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in
                                           _open_clip_layout(reference.encoder.model).items()}},
               folder / "HPS_v2.1_compressed.pt")
    registry.clear_cache()
    scores = registry.build_reward(_ref("clip_score", folder, checkpoint="HPS_v2.1_compressed.pt"))(_videos(), PROMPTS)
    assert torch.allclose(scores["clip_score"], expected, atol=1e-5)
    registry.clear_cache()
    bad = _open_clip_layout(reference.encoder.model)
    bad["visual.transformer.resblocks.0.ls_1.gamma"] = torch.ones(32)
    torch.save(bad, folder / "bad.pt")
    with pytest.raises(JobError, match="ls_1.*no transformers CLIP counterpart"):
        registry.build_reward(_ref("clip_score", folder, checkpoint="bad.pt"))
