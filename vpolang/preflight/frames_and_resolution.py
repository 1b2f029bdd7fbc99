"""E0318 / E0319: frames and resolution every policy of a stage can encode and patch, by the family
rules in vpolang/schema/families.py (Wan: 1 + 4k frames; CogVideoX: 1 + 8k; sides divisible by VAE
stride x patch). The runtime's `latent_shape` applies the same function; before this rule SFT trained
silently on 16 Wan frames and only sampling refused them."""
from __future__ import annotations

from ..diagnostics import Diagnostic, Note
from ..schema.families import VIDEO_FAMILIES, video_shape_problem
from .context import field_span, policy_bases

CODES = {"frames": "E0318", "resolution": "E0319"}


def check(stage, pf) -> list[Diagnostic]:
    cfg = stage.config
    if "frames" not in cfg or stage.kind == "reward_model":
        return []
    out = []
    for path, name, spec in policy_bases(cfg):
        frames = cfg.get("frames") or spec["frames"]
        height, width = cfg.get("resolution") or spec["resolution"]
        family = VIDEO_FAMILIES.get(spec["family"])
        problem = video_shape_problem(frames, height, width, spec["vae_stride"], spec["patch"],
                                      bool(family and family.odd_latent_frames))
        if problem is None:
            continue
        field, why = problem
        given = cfg.get(field) is not None
        span = field_span(stage, (field,) if given else path)
        notes = () if given else (Note(f"the stage takes `{field}` from the model's default", None),)
        out.append(Diagnostic(CODES[field], f"stage `{stage.id}`: {spec['family']} model `{name}`: {why}", span,
                              hint=f"set `{field}` on the stage to a value the {spec['family']} VAE and patch "
                              "grid accept", notes=notes))
    return out
