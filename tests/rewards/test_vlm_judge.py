"""Qwen2-VL-family inputs and the VLM judge (P(yes), pairwise, swap check) on tiny saved models."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from runtime.errors import JobError
from runtime.rewards.vlm import VIDEO, VideoPatcher, smart_resize
from runtime.rewards.vlm_judge import VlmJudgeReward, answer_token_ids, swap_checked_verdicts, two_way_probability

from .conftest import noise_video, square_video

QUESTION = "Does the video show what the prompt says?"
PROMPTS = ["a red square moving right", "noise", "a bright square on a grey background"]


def videos():
    return torch.stack([square_video(frames=6, size=24, step=2.0), noise_video(frames=6, size=24),
                        square_video(frames=6, size=24, step=0.0)])


@pytest.mark.parametrize("h,w,mn,mx", [(480, 832, 128 * 28 * 28, 768 * 28 * 28), (16, 24, 256, 1024),
                                       (100, 30, 56 * 56, 200 * 200), (2000, 3000, 3136, 401408)])
def test_smart_resize_matches_transformers(h, w, mn, mx):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as reference

    assert smart_resize(h, w, 28, mn, mx) == reference(h, w, factor=28, min_pixels=mn, max_pixels=mx)


def test_patch_rows_match_the_transformers_image_processor():
    """An image is a 2-frame tube of itself: our rows must equal the processor's, value for value."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    image = (np.random.RandomState(0).rand(16, 24, 3) * 255).astype(np.uint8)
    processor = Qwen2VLImageProcessorPil(patch_size=4, temporal_patch_size=2, merge_size=2,
                                         size={"shortest_edge": 256, "longest_edge": 1024})
    expected = processor(images=[image], return_tensors="pt")
    frame = torch.from_numpy(image).permute(2, 0, 1).float() / 255 * 2 - 1
    rows, grid = VideoPatcher(patch=4, temporal=2, merge=2, min_pixels=256, max_pixels=1024)(frame[None])
    assert grid.tolist() == expected["image_grid_thw"][0].tolist() == [1, 4, 6]
    assert torch.allclose(rows, expected["pixel_values"], atol=1e-5)


def test_patch_rows_match_the_transformers_video_processor():
    pytest.importorskip("torchvision")
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    video = (torch.rand(5, 3, 16, 24, generator=torch.Generator().manual_seed(0)) * 255).round()
    processor = Qwen2VLVideoProcessor(patch_size=4, temporal_patch_size=2, merge_size=2,
                                      size={"shortest_edge": 256, "longest_edge": 1024})
    expected = processor(videos=[video.to(torch.uint8)], return_tensors="pt", do_sample_frames=False)
    rows, grid = VideoPatcher(patch=4, temporal=2, merge=2, min_pixels=256, max_pixels=1024)(video / 255 * 2 - 1)
    assert grid.tolist() == expected["video_grid_thw"][0].tolist() == [3, 4, 6]
    assert torch.allclose(rows, expected["pixel_values_videos"], atol=1e-5)


def test_two_way_probability():
    logits = torch.tensor([[2.0, 0.0, 0.0, -1.0], [3.0, 0.0, 0.0, 3.0]])
    p = two_way_probability(logits, [0], [3])
    assert torch.allclose(p, torch.tensor([1 / (1 + np.exp(-3.0)), 0.5]).float())
    # several spellings: P(first) sums token 0 and 1
    p2 = two_way_probability(logits, [0, 1], [3])
    assert torch.allclose(p2[0], torch.tensor((np.exp(2) + 1) / (np.exp(2) + 1 + np.exp(-1))).float())


def test_swap_checked_verdicts():
    p_ab = torch.tensor([0.9, 0.2, 0.7, 0.55, 0.5])
    p_swapped = torch.tensor([0.8, 0.1, 0.3, 0.6, 0.5])
    assert swap_checked_verdicts(p_ab, p_swapped).tolist() == [1, -1, 0, 1, 0]
    assert swap_checked_verdicts(p_ab, p_swapped, margin=0.1).tolist() == [1, -1, 0, 0, 0]


def test_answer_tokens_cover_the_single_token_spellings(models):
    judge = VlmJudgeReward(models["qwen2_vl"], QUESTION, frames=4, dtype="fp32")
    tok = judge.vlm.tokenizer
    assert {tok.decode([i]) for i in judge.yes} == {"yes", "Yes", " yes"}
    assert {tok.decode([i]) for i in judge.no} == {"no", "No", " no"}
    with pytest.raises(JobError, match="no single token for `maybe`"):
        answer_token_ids(tok, "maybe")


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "llava"])
def test_p_yes_is_read_from_the_next_token_distribution(models, family):
    judge = VlmJudgeReward(models[family], QUESTION, frames=4, dtype="fp32")
    scores = judge(videos(), PROMPTS)["vlm_judge"]
    assert scores.shape == (3,) and bool(((scores > 0) & (scores < 1)).all())
    # by hand for the first video: full softmax at the answer position
    inputs = judge.vlm.inputs([judge.pointwise_text(PROMPTS[0])], [[videos()[0, [0, 2, 3, 5]]]])
    with torch.no_grad():
        probs = judge.vlm.model(**inputs).logits[0, -1].softmax(-1)
    p_yes, p_no = probs[judge.yes].sum(), probs[judge.no].sum()
    assert torch.allclose(scores[0], p_yes / (p_yes + p_no), atol=1e-5)


@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_batched_scores_equal_one_at_a_time(models, family):
    """Left padding and (multimodal) RoPE must not leak between rows of a batch."""
    judge = VlmJudgeReward(models[family], QUESTION, frames=4, dtype="fp32")
    batched = judge(videos(), PROMPTS)["vlm_judge"]
    single = torch.cat([judge(videos()[i:i + 1], PROMPTS[i:i + 1])["vlm_judge"] for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-5)


def test_the_prompt_holds_one_video_token_per_merged_patch(models):
    judge = VlmJudgeReward(models["qwen2_vl"], QUESTION, frames=4, dtype="fp32")
    inputs = judge.vlm.inputs([judge.pointwise_text("p")], [[videos()[0, :4]]])
    # 24 x 24 frames -> 24 x 24 (multiples of 8, 576 px within 256..1024) -> grid (2, 6, 6) -> 72 / 4 = 18
    assert inputs["video_grid_thw"].tolist() == [[2, 6, 6]]
    assert int((inputs["input_ids"] == judge.vlm.video_token_id).sum()) == 18
    assert inputs["pixel_values_videos"].shape == (72, 3 * 2 * 4 * 4)
    assert VIDEO in judge.pointwise_text("p") and "p" in judge.pointwise_text("p")


def test_pairwise_judge_compares_both_orders(models):
    judge = VlmJudgeReward(models["qwen2_vl"], QUESTION, frames=4, pairwise=True, dtype="fp32")
    a, b = videos()[:2], videos()[1:]
    p_ab, p_ab_swapped = judge.compare_both_orders(a, b, PROMPTS[:2])
    assert p_ab.shape == p_ab_swapped.shape == (2,)
    assert torch.allclose(p_ab_swapped, 1 - judge.compare(b, a, PROMPTS[:2]))
    # the same video on both sides: a position-fair judge would say 0.5; this random one has a bias,
    # and the swap check turns a pure position bias into no verdict
    same = videos()[:1]
    p, q = judge.compare_both_orders(same, same, PROMPTS[:1])
    assert torch.allclose(p + q, torch.ones(1), atol=1e-6)
    assert swap_checked_verdicts(p, q).tolist() == [0]


def test_a_pairwise_judge_is_not_a_pointwise_reward(models):
    judge = VlmJudgeReward(models["qwen2_vl"], QUESTION, frames=4, pairwise=True, dtype="fp32")
    with pytest.raises(JobError, match="pairwise judge"):
        judge(videos(), PROMPTS)


def test_texts_must_hold_one_slot_per_video(models):
    judge = VlmJudgeReward(models["qwen2_vl"], QUESTION, frames=2, dtype="fp32")
    with pytest.raises(ValueError, match="text has 0 video slots for 1 videos"):
        judge.vlm.inputs(["no slot here"], [[videos()[0, :2]]])
