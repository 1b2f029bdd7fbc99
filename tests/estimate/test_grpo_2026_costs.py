"""What the 2026 GRPO options cost in `vpo plan` (docs/algorithms.md §S3): a window trains only its
steps, each shared by every rollout; a pairwise judge's win rates read each video 2 (G - 1) times;
CPS, GRPO-Guard and the velocity KL cost what the default does."""
from __future__ import annotations

from vpolang.api import check_source
from vpolang.estimate import Clip, Grpo, Scorer, VisionLanguage, Work
from vpolang.estimate.jobs import describe
from vpolang.lower import lower
from vpolang.source import SourceFile

from .common import ROOT

CLIP = Clip.of(33, "480p")
RM = Scorer("rm", VisionLanguage(params=2_200_000_000, layers=28, hidden=1536))


def test_a_window_trains_its_steps_only_and_shares_each_pass():
    plain = Grpo(clip=CLIP, batch=8, steps=200, group_size=8, sample_steps=50, kl=0.004, rewards=(RM,))
    window = Grpo(clip=CLIP, batch=8, steps=200, group_size=8, sample_steps=50, kl=0.004, rewards=(RM,), window=2)
    assert (plain.trained_steps, window.trained_steps) == (29, 2)
    # 64 rollouts x 2 window steps (and their reference forwards); the 2 rollouts of a GPU share each pass
    assert window.step_work(32) == Work(train=64 * 2, reference=64 * 2, sample=64 * 50, vae_decode=64, prompts=8,
                                        scored=((RM, 64),), sample_batch=2, update_batch=2.0)
    assert window.step_work(32).sample == plain.step_work(32).sample  # sampling is unchanged


RECIPE = """vpo 0.1
use std.models
use std.shapes
reward which = vlm_judge {{ model = models.qwen25_vl_7b, question = "Which is better?", pairwise = {pairwise} }}
stage rl = grpo(shapes.tiny_dit) {{
  prompts    = shapes.prompts(n = 8)
  group_size = 6
  lr         = 1e-4
  kl         = 0.01
  reward     = which
{extra}}}
"""


def _workload(pairwise: str, extra: str = ""):
    result = check_source(SourceFile("c.vpo", RECIPE.format(pairwise=pairwise, extra=extra), ROOT / "c.vpo"))
    assert not [d for d in result.diagnostics if d.severity == "error"], result.diagnostics
    job = next(j for j in lower(result.recipe).jobs if j.id == "rl")
    return describe(job, ROOT, None, [])[0]


def test_a_pairwise_judge_reads_each_video_in_its_pairs_both_ways():
    judged = _workload("true", "  reward_as  = win_rate\n")
    pointwise = _workload("false", "  reward_as  = win_rate\n")
    assert [s.calls_per_video for s in judged.rewards] == [2 * (6 - 1)]
    assert [s.calls_per_video for s in pointwise.rewards] == [1.0]  # win rates from scores: no extra reads


def test_cps_guard_and_velocity_kl_cost_what_the_default_does():
    base = _workload("false")
    assert _workload("false", "  noise = cps\n  guard = true\n  kl_space = velocity\n").step_work(1) == base.step_work(1)


def test_nft_trains_its_levels_with_one_old_velocity_forward_each_and_no_log_probs():
    nft = Grpo(clip=CLIP, batch=8, steps=200, group_size=8, sample_steps=10, train_fraction=0.5, rewards=(RM,),
               nft=True, updates_per_batch=2)
    assert nft.trained_steps == 5  # of the 10 levels (no deterministic last step to skip)
    # 64 videos x 5 levels x 2 updates; v_old once per batch; the ODE rollouts as before
    assert nft.step_work(32) == Work(train=64 * 5 * 2, reference=64 * 5, sample=64 * 10, vae_decode=64, prompts=8,
                                     scored=((RM, 64),), sample_batch=2, update_batch=2.0)


def test_a_shared_noise_window_samples_each_groups_prefix_once():
    from types import SimpleNamespace as grpo_config  # the fields of a typed grpo config it reads

    from vpolang.estimate.jobs import _shared_prefix_steps
    from vpolang.schema.stages.grpo import Window

    w = {"size": 2, "schedule": "slide", "shift_every": 3, "stride": 1}
    # T = 10: starts 0,0,0, 1,1,1, ..., 7 from step 21 on; 30 steps: (3 (0+...+6) + 9 x 7) / 30
    slide, random = Window(**w), Window(**{**w, "schedule": "random"})
    assert _shared_prefix_steps(grpo_config(window=slide, shared_noise=True), 10, 30) == (3 * 21 + 9 * 7) / 30
    assert _shared_prefix_steps(grpo_config(window=random, shared_noise=True), 10, 30) == 3.5
    assert _shared_prefix_steps(grpo_config(window=slide, shared_noise=False), 10, 30) == 0.0
    shared = Grpo(clip=CLIP, batch=8, steps=200, group_size=8, sample_steps=50, window=2, prefix_steps=10.0)
    # 64 rollouts x 50 steps, less 10 prefix steps of 7 of every group's 8 rollouts
    assert shared.step_work(32).sample == 64 * 50 - 56 * 10
