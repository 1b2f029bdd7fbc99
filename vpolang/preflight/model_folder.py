"""E0320 / E0321 / E0322: a model folder that exists here and contradicts its declaration.

Reads JSON only (model_index.json, transformer/config.json, a VLM's config.json): a CogVideoX entry
pointing at a Wan folder failed at load time with a bare TypeError. E0320: the folder's pipeline (or
VLM model_type) is not the declared family's; E0321: the transformer's sizes are not the declared ones
(the planner sized memory and time on them); E0322: the Wan 2.2 two-expert layout is inconsistent.
A folder that is absent here may exist on the cluster: that is checked when the job starts."""
from __future__ import annotations

import json
from pathlib import Path

from ..diagnostics import Diagnostic
from ..schema.families import VIDEO_FAMILIES, VISION_LANGUAGE_ADAPTERS, VISION_LANGUAGE_FAMILIES
from .context import decl_span, model_refs


def check(stage, pf) -> list[Diagnostic]:
    out = []
    for found in model_refs(stage.config):
        spec = found.ref["spec"]
        folder = _folder(spec.get("path"), pf.recipe_dir)
        if folder is None:
            continue
        span = decl_span(stage, found, pf)
        what = f"model `{found.ref['name']}` (family `{spec.get('family')}`)"
        problems = _video(spec, folder) if spec.get("kind") == "video_diffusion" else _vision(spec, folder)
        out += [Diagnostic(code, f"{what}: folder `{spec['path']}`: {why}", span, hint=hint) for code, why, hint in problems]
    return out


def _folder(path: str | None, recipe_dir: Path | None) -> Path | None:
    if not path:
        return None
    folder = Path(path)
    if not folder.is_absolute():
        if recipe_dir is None:
            return None
        folder = recipe_dir / folder
    return folder if folder.is_dir() else None


def _json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent or unreadable: not a consistency question (the folder check reports it)
    return data if isinstance(data, dict) else None


def _video(spec: dict, folder: Path) -> list[tuple[str, str, str]]:
    family = VIDEO_FAMILIES.get(spec["family"])
    if family is None:
        return []
    out = []
    index = _json(folder / "model_index.json")
    pipeline = index.get("_class_name") if index else None
    if pipeline and pipeline not in family.pipelines:
        owner = next((f.name for f in VIDEO_FAMILIES.values() if pipeline in f.pipelines), None)
        out.append(("E0320", f"the folder holds a {pipeline}, not a {' or '.join(family.pipelines)}",
                    f"declare the model as family `{owner}` (e.g. from the std.models entry of that family)"
                    if owner else "point `path` at a folder of this family"))
        return out  # sizes of another architecture say nothing more
    config = _json(folder / "transformer" / "config.json")
    if config:
        wrong = [(name, spec[name], got) for name, read in family.sizes.items()
                 if (got := read(config)) is not None and got != spec.get(name)]
        if wrong:
            listed = ", ".join(f"`{n}` = {d} declared, {g} in transformer/config.json" for n, d, g in wrong)
            out.append(("E0321", f"the transformer's sizes differ from the declaration: {listed}",
                        "declare the sizes of the weights in the folder (the planner's memory and time use them), "
                        "or point `path` at the declared model"))
    experts = (folder / "transformer_2").is_dir()
    if experts and index is not None and index.get("boundary_ratio") is None:
        out.append(("E0322", "transformer_2/ is there but model_index.json sets no boundary_ratio",
                    "a Wan 2.2 two-expert folder names the noise level where the experts switch"))
    if spec["family"] == "wan22" and index is not None and not experts:
        out.append(("E0322", "family `wan22` declares two experts, but the folder has no transformer_2/",
                    "declare family `wan` for a single-transformer Wan folder"))
    return out


def _vision(spec: dict, folder: Path) -> list[tuple[str, str, str]]:
    if spec.get("family") not in VISION_LANGUAGE_ADAPTERS:
        return []  # not a family the schema admits (a hand-written spec)
    config = _json(folder / "config.json")
    model_type = config.get("model_type") if config else None
    accepted = VISION_LANGUAGE_FAMILIES[spec["family"]]
    if model_type and model_type not in accepted:
        return [("E0320", f"config.json holds a `{model_type}` model, not a {' or '.join(accepted)} model",
                 f"point `path` at a {' or '.join(accepted)} folder")]
    return []
