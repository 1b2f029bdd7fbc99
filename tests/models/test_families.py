"""Each family loads from a pipeline-layout folder with the real classes and honours the conventions."""
from __future__ import annotations

import json

import pytest
import torch

from runtime.models.families import FAMILIES, build_policy, from_pretrained
from runtime.models.parameterization import vp_coefficients

from .conftest import PROMPTS, latents, load, video_shape


def test_folders_are_real_diffusers_pipelines(folders):
    """diffusers' own pipeline classes load our folders: the layout and model_index.json are right."""
    from diffusers import CogVideoXPipeline, WanPipeline

    wan = WanPipeline.from_pretrained(folders["wan22"])
    assert wan.transformer_2 is not None and wan.config.boundary_ratio == 0.875
    cog = CogVideoXPipeline.from_pretrained(folders["cogvideox"])
    assert type(cog.transformer).__name__ == "CogVideoXTransformer3DModel"
    for folder in folders.values():
        for sub in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
            assert (folder / sub).is_dir(), (folder, sub)


def test_family_comes_from_the_folder(folders):
    assert from_pretrained(folders["wan"]).family == "wan"
    assert from_pretrained(folders["cogvideox"]).family == "cogvideox"
    assert from_pretrained(folders["wan"], family="wan22").family == "wan22"
    assert sorted(FAMILIES) == ["cogvideox", "shapes", "wan", "wan22"]


def test_velocity_encode_decode(any_policy):
    policy = any_policy
    frames, height, width = video_shape(policy)
    pixels = torch.rand(2, frames, 3, height, width, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z = policy.encode_video(pixels)
    assert z.shape == (2, *policy.latent_shape(frames, height, width)) and z.dtype == torch.float32
    assert policy.decode(z).shape == pixels.shape
    text = policy.encode_prompts(PROMPTS)
    v = policy.velocity(latents(policy), torch.tensor([0.9, 0.2]), text)
    assert v.shape == z.shape and v.dtype == torch.float32 and torch.isfinite(v).all()
    assert policy.velocity(latents(policy), 0.5, text).shape == z.shape  # a scalar sigma broadcasts


def test_latent_shape_checks_divisibility(folders):
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        load(folders, "wan").latent_shape(6, 32, 32)
    with pytest.raises(ValueError, match="odd number of latent frames"):
        load(folders, "cogvideox").latent_shape(5, 32, 32)  # 2 latent frames would decode to 8


def test_text_padding_follows_each_pipeline(folders):
    """Wan zeroes the states past each prompt; CogVideoX keeps the unmasked encoder's states."""
    wan, cog = load(folders, "wan"), load(folders, "cogvideox")
    for policy, zeroed in ((wan, True), (cog, False)):
        text = policy.encode_prompts(PROMPTS)
        assert text.embeds.shape[1] == policy.spec["text_len"]
        assert text.mask.sum(1).tolist() == [8, 3]  # words + </s>
        padding = text.embeds[1, 3:]
        assert bool((padding == 0).all()) == zeroed


def test_wan_ode_step_matches_the_diffusers_scheduler(folders):
    """Our schedule, timestep scale (1000 s) and Euler step reproduce FlowMatchEulerDiscreteScheduler."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from runtime.models.sampler import sample

    policy = load(folders, "wan")
    text, x = policy.encode_prompts(PROMPTS), latents(policy)
    ours = sample(policy, text, x, 4).final
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(folders["wan"] / "scheduler")
    scheduler.set_timesteps(sigmas=torch.linspace(1, 0, 5)[:-1].tolist())  # it applies shift 3 itself
    theirs = x.clone()
    with torch.no_grad():
        for t in scheduler.timesteps:
            v = policy.transformer(hidden_states=theirs, timestep=t.expand(2), encoder_hidden_states=text.embeds,
                                   return_dict=False)[0]
            theirs = scheduler.step(v, t, theirs, return_dict=False)[0]
    assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("name", ["cogvideox", "cogvideox_rope"])
def test_cogvideox_flow_step_is_the_pipelines_ddim_step(folders, name):
    """The CogVideoX adapter maps flow level s to the scheduler's timestep and v-prediction to eps - x0
    exactly: an Euler step of our ODE between the levels of two DDIM timesteps is the DDIM step."""
    from diffusers import CogVideoXDDIMScheduler

    from runtime.models.cogvideox import rotary_embedding

    policy = load(folders, name)
    scheduler = CogVideoXDDIMScheduler.from_pretrained(folders[name] / "scheduler")
    scheduler.set_timesteps(10)
    t, t_prev = scheduler.timesteps[3], scheduler.timesteps[4]
    s, s_prev = (flow_level(scheduler.alphas_cumprod[i]) for i in (t, t_prev))
    text, x_t = policy.encode_prompts(PROMPTS), latents(policy)
    frames, h, w = x_t.shape[2:]
    with torch.no_grad():
        v_vp = policy.transformer(hidden_states=x_t.permute(0, 2, 1, 3, 4), encoder_hidden_states=text.embeds,
                                  timestep=t.expand(2), return_dict=False,
                                  image_rotary_emb=rotary_embedding(policy.transformer.config, frames, h, w, "cpu"))[0]
        ddim = scheduler.step(v_vp, t, x_t.permute(0, 2, 1, 3, 4), return_dict=False)[0].permute(0, 2, 1, 3, 4)
        x_s = x_t / vp_coefficients(s)[2]
        x_next = x_s + (s_prev - s) * policy.velocity(x_s, s, text)
    assert torch.allclose(x_next * vp_coefficients(s_prev)[2], ddim, atol=1e-4)


def flow_level(alpha_bar: torch.Tensor) -> torch.Tensor:
    """The flow s with the same signal-to-noise ratio: (1 - s) / s = sqrt(alpha_bar / (1 - alpha_bar))."""
    ratio = torch.sqrt(alpha_bar.double() / (1 - alpha_bar.double()))
    return (1 / (1 + ratio)).float()


def test_wan22_routes_each_sample_to_its_expert(folders):
    policy = load(folders, "wan22")
    pair, text, x = policy.transformer, policy.encode_prompts(PROMPTS), latents(policy)
    sigma = torch.tensor([0.95, 0.3])  # above and below the 0.875 boundary
    with torch.no_grad():
        mixed = policy.velocity(x, sigma, text)
        for i, expert in enumerate((pair.high, pair.low)):
            alone = expert(hidden_states=x[i:i + 1], timestep=sigma[i:i + 1] * 1000,
                           encoder_hidden_states=text.embeds[i:i + 1], return_dict=False)[0]
            assert torch.allclose(mixed[i:i + 1], alone, atol=1e-5)
        other = pair.low(hidden_states=x[:1], timestep=sigma[:1] * 1000, encoder_hidden_states=text.embeds[:1],
                         return_dict=False)[0]
    assert not torch.allclose(mixed[:1], other, atol=1e-3)


def test_build_policy_from_a_plan_spec(folders, tmp_path):
    spec = {"family": "wan", "path": folders["wan"].name, "dtype": "bf16", "text_len": 16, "shift": 5.0}
    policy = build_policy(spec, recipe_dir=folders["wan"].parent)
    assert policy.compute_dtype == torch.float32  # bf16 becomes fp32 on a CPU unless asked explicitly
    assert policy.spec["shift"] == 5.0 and policy.spec["latent_channels"] == 16
    with pytest.raises(FileNotFoundError, match="has no `path`"):
        build_policy({"dtype": "bf16", "family": "wan"})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_policy({"dtype": "bf16", "family": "wan", "path": str(tmp_path / "missing")})
    with pytest.raises(ValueError, match="no runtime adapter"):
        build_policy({"dtype": "bf16", "family": "hunyuan", "path": str(tmp_path)})
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "LTXPipeline"}))
    with pytest.raises(ValueError, match="no adapter for pipeline class"):
        from_pretrained(tmp_path)


@pytest.mark.parametrize("present, missing", [((), "model_index.json and no transformer/config.json"),
                                               (("model_index.json",), "transformer/config.json")])
def test_a_folder_that_is_not_a_diffusers_folder_says_so(tmp_path, present, missing):
    """Not "check your internet connection" (diffusers' fallback to the Hub): the path and what it lacks."""
    folder = tmp_path / "weights"
    (folder / "transformer").mkdir(parents=True)
    for name in present:
        (folder / name).write_text("{}")
    with pytest.raises(FileNotFoundError) as err:
        build_policy({"dtype": "bf16", "family": "wan", "path": "weights"}, recipe_dir=tmp_path)
    message = str(err.value)
    assert f"{folder} is not a diffusers model folder: it has no {missing}" in message
    assert "internet" not in message


def test_runtime_reads_the_compilers_family_table():
    """The runtime loads exactly the families the compiler's table says it can (the preflight rejects the
    others at the recipe line), from the pipelines the preflight checks folders against."""
    from runtime.models.codecs import CogVideoXCodec
    from runtime.rewards.vlm import VLM_FAMILIES
    from vpolang.schema.families import VIDEO_FAMILIES, VISION_LANGUAGE_ADAPTERS, runtime_families

    assert sorted(FAMILIES) == runtime_families()
    assert all(FAMILIES[name].pipelines == VIDEO_FAMILIES[name].pipelines for name in FAMILIES)
    assert CogVideoXCodec.odd_latent_frames == VIDEO_FAMILIES["cogvideox"].odd_latent_frames
    assert VLM_FAMILIES == VISION_LANGUAGE_ADAPTERS


@pytest.mark.parametrize("name", ["wan", "cogvideox"])
def test_preflight_and_latent_shape_agree(folders, name):
    """Over a sweep of frame counts and sizes, the compiler's rule rejects exactly the shapes the loaded
    policy's latent_shape refuses."""
    from vpolang.schema.families import VIDEO_FAMILIES, video_shape_problem

    policy = load(folders, name)
    odd = VIDEO_FAMILIES[name].odd_latent_frames
    for frames in range(1, 20):
        for side in (16, 24, 32, 40):
            problem = video_shape_problem(frames, side, 32, policy.codec.stride, policy.spec["patch"], odd)
            try:
                policy.latent_shape(frames, side, 32)
                refused = False
            except ValueError:
                refused = True
            assert refused == (problem is not None), (name, frames, side, problem)


def _preflight_codes(tmp_path, model: str) -> list[str]:
    from vpolang.api import check_file

    recipe = tmp_path / "r.vpo"
    recipe.write_text(f"vpo 0.1\nuse std.models\nmodel base = {model}\n"
                      "stage tune = sft(base) {\n  data = videos(\"clips/*.mp4\")\n  steps = 1\n  lr = 1e-5\n"
                      "  frames = 9\n  resolution = [32, 32]\n}\n")
    return [d.code for d in check_file(recipe).diagnostics if d.code[1:3] == "03"]  # the preflight's


def test_preflight_reads_real_diffusers_folders(folders, tmp_path):
    """The folder rule reads the JSON diffusers writes: the tiny Wan folder declared with its own sizes
    passes; declared as CogVideoX (its loader failed with a bare TypeError) or with other sizes, it is
    rejected at the model's line."""
    wan = folders["wan"]
    sizes = ("params = 1M, layers = 2, hidden = 32, heads = 2, ffn = 64, patch = [1, 2, 2], "
             "vae_stride = [4, 8, 8], latent_channels = 16, text_dim = 32, resolution = [32, 32], frames = 9")
    assert _preflight_codes(tmp_path, f'video_diffusion {{ family = wan, path = "{wan}", {sizes} }}') == []
    assert "E0320" in _preflight_codes(tmp_path, f'models.cogvideox_2b {{ path = "{wan}" }}')
    assert "E0321" in _preflight_codes(tmp_path, f'models.wan21_t2v_1_3b {{ path = "{wan}" }}')
    assert _preflight_codes(tmp_path, f'models.wan22_t2v_a14b {{ path = "{folders["wan22"]}", layers = 2, '
                            'hidden = 32, heads = 2, ffn = 64, text_dim = 32 }') == []
