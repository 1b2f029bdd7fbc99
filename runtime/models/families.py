"""Family adapters: build or load a VideoPolicy from a plan's model spec (`config["model"]`)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from .policy import TextCond, VideoPolicy

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
BUILDERS: dict[str, Callable[..., VideoPolicy]] = {}


def family(name: str):
    def register(fn):
        BUILDERS[name] = fn
        return fn
    return register


def build_policy(spec: dict, device: str | torch.device = "cpu", seed: int = 0, recipe_dir: Path | None = None,
                 dtype: str | None = None) -> VideoPolicy:
    """The base model of a spec: built from config (toy worlds) or loaded from its local `path`."""
    if spec["family"] not in BUILDERS:
        raise ValueError(f"model family {spec['family']!r} has no runtime adapter yet; "
                         f"available: {', '.join(sorted(BUILDERS))}")
    want = dtype or spec.get("dtype", "bf16")
    if str(device) == "cpu" and want != "fp32":
        want = "fp32"  # bf16 matmuls on a CPU are slow and lossy; the GPU path keeps the spec's dtype
    policy = BUILDERS[spec["family"]](spec, seed=seed, recipe_dir=recipe_dir, dtype=DTYPES[want])
    return policy.to(device)


def wan_call(model, latents: torch.Tensor, sigma: torch.Tensor, text: TextCond) -> torch.Tensor:
    """Wan: (B, C, F, H, W) latents, timestep = 1000 sigma, predicts eps - x0 (our v)."""
    out = model(hidden_states=latents, timestep=sigma * 1000.0, encoder_hidden_states=text.embeds.to(latents.dtype),
                return_dict=False)[0]
    return out.float()


# ---- the shapes world: a tiny pixel-space Wan transformer with a tiny T5 text encoder ---------------------
class WordTokenizer:
    """Word-level tokenizer over a fixed vocabulary (the shapes world's words)."""

    def __init__(self, vocab: tuple[str, ...], length: int):
        self.ids = {w: i for i, w in enumerate(vocab)}
        self.length = length

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.zeros(len(prompts), self.length, dtype=torch.long)
        mask = torch.zeros(len(prompts), self.length, dtype=torch.bool)
        for i, p in enumerate(prompts):
            words = [self.ids.get(w, 1) for w in p.lower().split()][: self.length]
            ids[i, : len(words)] = torch.tensor(words, dtype=torch.long)
            mask[i, : len(words)] = True
        return ids, mask


@family("shapes")
def build_shapes(spec: dict, seed: int, recipe_dir: Path | None, dtype: torch.dtype) -> VideoPolicy:
    from diffusers import WanTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    from runtime.shapes.world import VOCAB

    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # the same spec and seed always give the same initial weights
    try:
        text_model = T5EncoderModel(T5Config(vocab_size=len(VOCAB), d_model=spec["text_dim"], d_kv=8,
                                             d_ff=2 * spec["text_dim"], num_layers=1, num_heads=4,
                                             relative_attention_num_buckets=8, dropout_rate=0.0))
        text_model.requires_grad_(False).eval()
        transformer = WanTransformer3DModel(
            patch_size=tuple(spec["patch"]), num_attention_heads=spec["heads"],
            attention_head_dim=spec["hidden"] // spec["heads"], in_channels=spec["latent_channels"],
            out_channels=spec["latent_channels"], text_dim=spec["text_dim"], freq_dim=32, ffn_dim=spec["ffn"],
            num_layers=spec["layers"], cross_attn_norm=True, qk_norm="rms_norm_across_heads",
            rope_max_seq_len=64)
    finally:
        torch.random.set_rng_state(gen_state)
    tokenizer = WordTokenizer(VOCAB, spec["text_len"])

    def encode(prompts: list[str]) -> TextCond:
        ids, mask = tokenizer(prompts)
        device = next(text_model.parameters()).device
        hidden = text_model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        return TextCond(hidden * mask.to(device).unsqueeze(-1), mask.to(device))

    policy = VideoPolicy(spec, transformer if dtype == torch.float32 else transformer.to(dtype), encode, None, wan_call)
    policy.text_model = text_model  # registered as a submodule so .to(device) moves it
    return policy


# ---- Wan 2.1 / 2.2 from a local diffusers pipeline folder --------------------------------------------------
class WanCodec:
    """AutoencoderKLWan with the per-channel latent normalisation of the Wan pipeline."""

    def __init__(self, vae):
        self.vae = vae
        cfg = vae.config
        self.mean = torch.tensor(cfg.latents_mean).view(1, -1, 1, 1, 1)
        self.std = torch.tensor(cfg.latents_std).view(1, -1, 1, 1, 1)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 2, 1, 3, 4).to(self.vae.dtype)
        z = self.vae.encode(x).latent_dist.mode().float()
        return (z - self.mean.to(z.device)) / self.std.to(z.device)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.float() * self.std.to(latents.device) + self.mean.to(latents.device)
        video = self.vae.decode(z.to(self.vae.dtype), return_dict=False)[0]
        return video.float().clamp(-1, 1).permute(0, 2, 1, 3, 4)


def resolve_model_path(spec: dict, recipe_dir: Path | None) -> Path:
    if not spec.get("path"):
        raise FileNotFoundError(f"the {spec['family']} model has no `path`: set it in the recipe to a local "
                                "diffusers folder, e.g. `model base = models.wan21_t2v_1_3b { path = \"...\" }`")
    path = Path(spec["path"])
    if not path.is_absolute() and recipe_dir is not None:
        path = recipe_dir / path
    if not path.is_dir():
        raise FileNotFoundError(f"model folder {path} does not exist")
    return path


@family("wan")
@family("wan22")
def load_wan(spec: dict, seed: int, recipe_dir: Path | None, dtype: torch.dtype) -> VideoPolicy:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    root = resolve_model_path(spec, recipe_dir)
    # torch_dtype at load keeps the modules diffusers names in fp32 (norms, time embedding, rope)
    transformer = WanTransformer3DModel.from_pretrained(root / "transformer", torch_dtype=dtype)
    vae = AutoencoderKLWan.from_pretrained(root / "vae", torch_dtype=torch.float32).requires_grad_(False).eval()
    text_model = UMT5EncoderModel.from_pretrained(root / "text_encoder", torch_dtype=dtype).requires_grad_(False).eval()
    tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer")
    length = spec["text_len"]

    def encode(prompts: list[str]) -> TextCond:
        device = next(text_model.parameters()).device
        tok = tokenizer(prompts, padding="max_length", max_length=length, truncation=True, return_tensors="pt")
        ids, mask = tok.input_ids.to(device), tok.attention_mask.to(device).bool()
        hidden = text_model(input_ids=ids, attention_mask=mask).last_hidden_state
        return TextCond(hidden * mask.unsqueeze(-1), mask)

    policy = VideoPolicy(spec, transformer, encode, vae, wan_call, vae_codec=WanCodec(vae))
    policy.text_model = text_model
    return policy
