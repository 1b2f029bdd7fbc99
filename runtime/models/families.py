"""The family registry: how to build or load a VideoPolicy for each model family, by name.

A family loads a local folder in the diffusers pipeline layout (`transformer/`, `vae/`, `text_encoder/`,
`tokenizer/`, `scheduler/`, `model_index.json`) with the real diffusers/transformers classes; toy
families can also build their model from the spec alone. Adding HunyuanVideo or LTX means writing one
adapter module and one `Family` entry here."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from runtime.shapes import model as shapes_model
from vpolang.model_folder import not_a_diffusers_folder
from vpolang.schema.families import VIDEO_FAMILIES

from . import cogvideox, wan
from .policy import VideoPolicy

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass(frozen=True)
class Family:
    name: str
    load: Callable[[Path, dict, torch.dtype], VideoPolicy]
    build: Callable[[dict, int, torch.dtype], VideoPolicy] | None = None  # from the spec alone

    @property
    def pipelines(self) -> tuple[str, ...]:
        """model_index.json `_class_name`s this family loads: the compiler's table, which its preflight
        checks folders against (vpolang/schema/families.py)."""
        return VIDEO_FAMILIES[self.name].pipelines


# Every family the compiler's table marks `adapter = True`, and no other (tests/models/test_families.py).
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("wan", wan.load_wan),
    Family("wan22", wan.load_wan),
    Family("cogvideox", cogvideox.load_cogvideox),
    Family("shapes", shapes_model.load, shapes_model.build),
)}


def build_policy(spec: dict, device: str | torch.device = "cpu", seed: int = 0, recipe_dir: Path | None = None,
                 dtype: str | torch.dtype | None = None) -> VideoPolicy:
    """The base model of a plan's model spec: loaded from its local `path`, or built from the spec (toy
    families) with weights that depend only on `seed`. On a CPU the spec's bf16/fp16 becomes fp32 (slow
    and lossy there); an explicit `dtype` is always honoured."""
    family = get_family(spec["family"])
    if dtype is None:
        wanted = DTYPES[spec["dtype"]]  # the plan's spec always has it (the schema's default)
        dtype = torch.float32 if torch.device(device).type == "cpu" else wanted
    elif isinstance(dtype, str):
        dtype = DTYPES[dtype]
    if spec.get("path"):
        path = resolve_model_path(spec, recipe_dir)
        policy = family.load(path, {**spec}, dtype)
        policy.base_folder = path
    elif family.build is not None:
        policy = family.build(spec, seed, dtype)
    else:
        raise FileNotFoundError(f"the {spec['family']} model has no `path`: set it in the recipe to a local "
                                "diffusers folder, e.g. `model base = models.wan21_t2v_1_3b { path = \"...\" }`")
    return policy.to(device)


def from_pretrained(path: str | Path, family: str | None = None, dtype: torch.dtype = torch.float32,
                    spec: dict | None = None) -> VideoPolicy:
    """Load a pipeline-layout folder; the family comes from its model_index.json unless given."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"model folder {root} does not exist")
    name = family or (spec or {}).get("family") or family_of_folder(root)
    policy = get_family(name).load(root, {**(spec or {}), "family": name, "path": str(root)}, dtype)
    policy.base_folder = root
    return policy


def family_of_folder(root: Path) -> str:
    index = root / "model_index.json"
    if not index.is_file():
        raise FileNotFoundError(f"{root} has no model_index.json; pass the family explicitly")
    pipeline = json.loads(index.read_text()).get("_class_name")
    for family in FAMILIES.values():
        if pipeline in family.pipelines:
            return family.name
    raise ValueError(f"{root}: no adapter for pipeline class {pipeline!r}")


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"model family {name!r} has no runtime adapter yet; available: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def resolve_model_path(spec: dict, recipe_dir: Path | None) -> Path:
    path = Path(spec["path"])
    if not path.is_absolute() and recipe_dir is not None:
        path = recipe_dir / path
    problem = not_a_diffusers_folder(path)  # else diffusers would look on the Hub and blame the network
    if problem:
        raise FileNotFoundError(problem)
    return path
