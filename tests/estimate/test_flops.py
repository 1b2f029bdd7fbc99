"""FLOPs against hand computations and against the counted FLOPs of the H100 runs."""
from __future__ import annotations

import pytest

from vpolang.estimate import Clip, VideoDiT, VisionLanguage
from vpolang.estimate.calibration import WAN_STEP
from vpolang.estimate.flops import (latent_elements, latent_frames, scorer_pass, text_encoder_flops, token_grid,
                                    tokens_per_video, transformer_pass, vae_decode_flops, vae_encode_flops)

from .common import WAN_1_3B, measurement

CLIP_33 = Clip.of(33, "480p")


def test_wan_tokens_by_hand():
    # causal VAE: 1 + (33 - 1) / 4 = 9 latent frames; 480 / 8 = 60 and 832 / 8 = 104 latent cells,
    # grouped 2 x 2 by the patch: 9 x 60 x 104 / 4 = 9 x 30 x 52
    assert latent_frames(WAN_1_3B, 33) == 9
    assert token_grid(WAN_1_3B, CLIP_33) == (9, 30, 52)
    assert tokens_per_video(WAN_1_3B, CLIP_33) == 9 * 60 * 104 // 4 == 14_040
    assert latent_elements(WAN_1_3B, CLIP_33) == 16 * 9 * 60 * 104
    # 720p x 81: 21 latent frames x 45 x 80
    assert tokens_per_video(WAN_1_3B, Clip.of(81, "720p")) == 21 * 45 * 80


def test_other_latent_layouts():
    # LTX-Video: 8x temporal, 32x spatial compression, 1x1x1 patches: 121 frames -> 16 x 15 x 26
    ltx = VideoDiT(params=1_900_000_000, layers=28, hidden=2048, heads=32, ffn=8192, patch=(1, 1, 1),
                   vae_stride=(8, 32, 32), latent_channels=128, text_len=128, text_dim=4096)
    assert tokens_per_video(ltx, Clip.of(121, "480p")) == (1 + 120 // 8) * (480 // 32) * (832 // 32)
    # pixel space (the shapes world): every frame is a latent frame
    pixels = VideoDiT(params=752_000, layers=3, hidden=128, heads=4, ffn=256, patch=(1, 4, 4), vae_stride=(1, 1, 1),
                      latent_channels=3, text_len=8, text_dim=32)
    assert tokens_per_video(pixels, Clip.of(8, (16, 16))) == 8 * 4 * 4


def test_transformer_forward_by_hand_matches_the_counted_72_9_tflop():
    n, d, layers, ffn, text = 14_040, 1536, 30, 8960, 512
    linear = (2 * layers * (4 * d * d + 2 * d * d + 2 * d * ffn) * n  # self q,k,v,o; cross q,o; MLP
              + 2 * layers * 2 * d * d * text)  # cross-attention k, v on the text tokens
    attention = 4 * layers * n * n * d + 4 * layers * n * text * d  # scores and values: self, then cross
    flops = transformer_pass(WAN_1_3B, n)
    assert (flops.linear, flops.attention) == (linear, attention)
    counted = measurement(WAN_STEP)["rows"][0]
    assert flops.forward / 1e12 == pytest.approx(counted["forward_tflop"], rel=0.002)


def test_training_step_matches_the_counted_flops_with_and_without_checkpointing():
    rows = {row["variant"]: row for row in measurement(WAN_STEP)["rows"]}
    flops = transformer_pass(WAN_1_3B, 14_040)
    # backward: 2x the linear layers, 2.5x attention (the flash backward recomputes the scores)
    assert flops.backward == 2 * flops.linear + 2.5 * flops.attention
    assert flops.training() / 1e12 == pytest.approx(rows["eager"]["step_tflop"], rel=0.002)
    assert flops.training(checkpointing=True) / 1e12 == pytest.approx(rows["eager+ckpt"]["step_tflop"], rel=0.002)


@pytest.mark.parametrize("frames", [1, 5, 17, 33, 49, 81, 121])
def test_more_frames_cost_more(frames):
    shorter, longer = Clip.of(frames, "480p"), Clip.of(frames + 4, "480p")
    assert transformer_pass(WAN_1_3B, tokens_per_video(WAN_1_3B, longer)).forward > \
        transformer_pass(WAN_1_3B, tokens_per_video(WAN_1_3B, shorter)).forward
    assert vae_decode_flops(WAN_1_3B, longer) > vae_decode_flops(WAN_1_3B, shorter)


def test_vae_costs_by_hand():
    # first frame, then 32 more, per pixel of 480 x 832, scaled by 127M / 126.9M (the measured VAE)
    scale = 127_000_000 / 126_892_531
    assert vae_encode_flops(WAN_1_3B, CLIP_33) == pytest.approx((6.663e6 + 32 * 5.003e6) * 480 * 832 * scale)
    assert vae_decode_flops(WAN_1_3B, CLIP_33) == pytest.approx((10.752e6 + 32 * 8.445e6) * 480 * 832 * scale)
    # a decode costs about 1.5 transformer forwards at this size: small next to 50 sampling steps
    ratio = vae_decode_flops(WAN_1_3B, CLIP_33) / transformer_pass(WAN_1_3B, 14_040).forward
    assert 1.0 < ratio < 2.0
    pixel_space = VideoDiT(params=1, layers=1, hidden=8, heads=1, ffn=8, patch=(1, 1, 1), vae_stride=(1, 1, 1),
                           latent_channels=3, text_len=1, text_dim=8)
    assert vae_decode_flops(pixel_space, CLIP_33) == 0.0


def test_text_encoder_and_scorer_by_hand():
    assert text_encoder_flops(WAN_1_3B) == 2 * 5.7e9 * 512
    vlm = VisionLanguage(params=2_200_000_000, layers=28, hidden=1536, tokens_per_frame=64)
    n = 8 * 64 + 64  # frames x tokens per frame + the question
    judged = scorer_pass(vlm, frames=8)
    assert judged.forward == 2 * 2.2e9 * n + 4 * 28 * n * n * 1536
    assert scorer_pass(vlm, frames=16).forward > judged.forward
