"""The reward protocol: validation, batching, multi-head `overall`, head selection."""
from __future__ import annotations

import pytest
import torch

from runtime.errors import JobError
from runtime.rewards.base import OVERALL, DeviceNeeds, Reward, select_head


class Brightness(Reward):
    """Two heads computed independently per video, so chunked and whole batches must agree."""

    def __init__(self, max_batch=None):
        self.name, self.heads = "brightness", ("mean", "spread")
        self.needs = DeviceNeeds(max_batch=max_batch)
        self.batches: list[int] = []

    def score(self, videos, prompts):
        self.batches.append(len(prompts))
        return {"mean": videos.mean((1, 2, 3, 4)), "spread": videos.std((1, 2, 3, 4)) * len(prompts[0])}


def videos(n=5):
    return torch.linspace(-1, 1, n * 2 * 3 * 4 * 4).reshape(n, 2, 3, 4, 4)


def test_multi_head_rewards_add_overall_as_the_sum_of_heads():
    out = Brightness()(videos(), ["ab"] * 5)
    assert set(out) == {"mean", "spread", OVERALL}
    assert torch.allclose(out[OVERALL], out["mean"] + out["spread"])


def test_batches_above_max_batch_are_split_and_joined_in_order():
    whole = Brightness()(videos(), ["ab"] * 5)
    reward = Brightness(max_batch=2)
    split = reward(videos(), ["ab"] * 5)
    assert reward.batches == [2, 2, 1]
    for head in whole:
        assert torch.equal(whole[head], split[head])


def test_scores_come_back_as_cpu_float32_without_gradients():
    v = videos().requires_grad_(True)
    out = Brightness()(v, ["ab"] * 5)
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" and not t.requires_grad for t in out.values())


@pytest.mark.parametrize("shape,prompts,match", [((5, 2, 4, 4), 5, "shaped"), ((5, 2, 1, 4, 4), 5, "shaped"),
                                                  ((5, 2, 3, 4, 4), 4, "5 videos but 4 prompts"),
                                                  ((0, 2, 3, 4, 4), 0, "empty")])
def test_malformed_batches_are_user_errors(shape, prompts, match):
    with pytest.raises(JobError, match=match):
        Brightness()(torch.zeros(shape), ["p"] * prompts)


def test_a_reward_that_returns_the_wrong_count_is_caught():
    class Broken(Brightness):
        def score(self, videos, prompts):
            return {"mean": torch.zeros(1), "spread": torch.zeros(len(prompts))}

    with pytest.raises(RuntimeError, match="gave 1 scores for 5 videos"):
        Broken()(videos(), ["p"] * 5)


def test_select_head():
    scalar = {"flow": torch.tensor([1.0])}
    multi = {"vq": torch.tensor([1.0]), "mq": torch.tensor([2.0]), OVERALL: torch.tensor([3.0])}
    assert select_head(scalar, None, "r.flow") is scalar["flow"]
    assert select_head(multi, None, "rm") is multi[OVERALL]
    assert select_head(multi, "mq", "rm") is multi["mq"]
    with pytest.raises(JobError, match="has no head `ta`; it has vq, mq, overall"):
        select_head(multi, "ta", "rm")
