"""What each model family can run, in one table the compiler owns and the runtime reads.

The preflight (vpolang/preflight/) rejects at the recipe line what the runtime's loaders would refuse
when the job starts; the runtime's family registry, codecs and VLM loaders read the same entries, so the
two cannot disagree. Pure data and pure functions: no torch."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


def _wan_patch(cfg: dict) -> Any:
    return list(cfg["patch_size"]) if "patch_size" in cfg else None


def _cog_patch(cfg: dict) -> Any:
    if "patch_size" not in cfg:
        return None
    return [cfg.get("patch_size_t") or 1, cfg["patch_size"], cfg["patch_size"]]


def _hidden(cfg: dict) -> Any:
    if "num_attention_heads" in cfg and "attention_head_dim" in cfg:
        return cfg["num_attention_heads"] * cfg["attention_head_dim"]
    return None


def _key(name: str) -> Callable[[dict], Any]:
    return lambda cfg: cfg.get(name)


@dataclass(frozen=True)
class VideoFamily:
    """One `video_diffusion` family: whether this runtime has an adapter for it, which diffusers
    pipelines it loads (`model_index.json` `_class_name`), whether its VAE decodes only an odd number
    of latent frames, and how the declared sizes read from `transformer/config.json`."""

    name: str
    adapter: bool
    pipelines: tuple[str, ...] = ()
    odd_latent_frames: bool = False
    sizes: dict[str, Callable[[dict], Any]] = field(default_factory=dict)
    # the runtime can split its tokens over GPUs (diffusers' context-parallel plan of its transformer;
    # runtime/parallel/sequence.py). CogVideoX's has none in diffusers 0.42.
    sequence_parallel: bool = False


_WAN_SIZES = {"layers": _key("num_layers"), "heads": _key("num_attention_heads"), "hidden": _hidden,
              "ffn": _key("ffn_dim"), "latent_channels": _key("in_channels"), "patch": _wan_patch,
              "text_dim": _key("text_dim")}
_COG_SIZES = {"layers": _key("num_layers"), "heads": _key("num_attention_heads"), "hidden": _hidden,
              "latent_channels": _key("in_channels"), "patch": _cog_patch, "text_dim": _key("text_embed_dim")}

VIDEO_FAMILIES: dict[str, VideoFamily] = {f.name: f for f in (
    VideoFamily("wan", True, ("WanPipeline",), sizes=_WAN_SIZES, sequence_parallel=True),
    VideoFamily("wan22", True, ("WanPipeline",), sizes=_WAN_SIZES, sequence_parallel=True),
    # CogVideoX's VAE restores 1 + 4 (F' - 1) frames only for an odd number F' of latent frames
    VideoFamily("cogvideox", True, ("CogVideoXPipeline",), odd_latent_frames=True, sizes=_COG_SIZES),
    VideoFamily("shapes", True, ("ShapesPipeline",), sequence_parallel=True),  # a tiny Wan transformer
    # in the catalogue for planning; loading them needs an adapter module in runtime/models/
    VideoFamily("hunyuan", False, ("HunyuanVideoPipeline",)),
    VideoFamily("ltx", False, ("LTXPipeline",)),
)}

# vision-language families the runtime loads, and the transformers `model_type`s (a folder's config.json)
# each accepts: Qwen2-VL and 2.5-VL (`tiny` is a small Qwen2-VL for tests) through their own classes;
# LLaVA and VILA (a vision tower, a projector and a LLaMA-family language model: VILA is that
# architecture) through transformers' Llava classes, from a folder in transformers' Llava layout (an
# original VILA checkpoint is converted to it first; E0320 where the folder says otherwise)
_QWEN_TYPES = ("qwen2_vl", "qwen2_5_vl")
VISION_LANGUAGE_FAMILIES: dict[str, tuple[str, ...]] = {
    "qwen2_vl": _QWEN_TYPES, "qwen25_vl": _QWEN_TYPES, "tiny": _QWEN_TYPES, "vila": ("llava",), "llava": ("llava",)}
VISION_LANGUAGE_ADAPTERS: tuple[str, ...] = tuple(VISION_LANGUAGE_FAMILIES)


def runtime_families() -> list[str]:
    return sorted(name for name, fam in VIDEO_FAMILIES.items() if fam.adapter)


def video_shape_problem(frames: int, height: int, width: int, vae_stride, patch,
                        odd_latent_frames: bool) -> tuple[str, str] | None:
    """(`frames` or `resolution`, why) when `frames` x `height` x `width` pixels cannot be encoded and
    patched, else None. Frames map to latents as 1 + (F - 1) / t; the latent frames must fill whole
    temporal patches; each side must be a multiple of VAE stride x patch."""
    st, sh, sw = vae_stride
    pt, ph, pw = patch
    if (frames - 1) % st:
        return "frames", f"{frames} frames do not fit the VAE's temporal stride {st}: use frames = 1 + {st}k"
    latent = (frames - 1) // st + 1
    if odd_latent_frames and latent % 2 == 0:
        return "frames", (f"the VAE decodes an odd number of latent frames; {frames} frames give {latent}: "
                          f"use frames = 1 + {2 * st}k")
    if latent % pt:
        return "frames", f"{frames} frames give {latent} latent frames, not a multiple of the temporal patch {pt}"
    if height % (sh * ph) or width % (sw * pw):
        return "resolution", (f"{height}x{width} px do not fit the VAE stride {sh}x{sw} and patch {ph}x{pw}: "
                              f"use sizes divisible by {sh * ph}x{sw * pw}")
    return None
