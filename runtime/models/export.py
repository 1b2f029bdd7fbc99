"""A stage's policy as something a user loads with diffusers alone (written inside its `policy` folder).

- `pipeline/`: a diffusers pipeline folder (`DiffusionPipeline.from_pretrained(".../policy/pipeline")`).
  A full fine-tune's trained transformer is written in diffusers' own layout (`transformer/config.json`
  + `diffusion_pytorch_model.safetensors`; Wan 2.2's high-noise expert in `transformer/`, the low-noise
  one in `transformer_2/`). A LoRA stage's pipeline is the model its adapter applies to: the last full
  fine-tune in its chain, or the base model. The untouched components (VAE, text encoder, tokenizer,
  scheduler, and the base transformer of a LoRA stage on the base) are symbolic links to the base
  model's folders, resolved to absolute paths: nothing is copied and the base is never modified
  (`cp -rL pipeline DIR` makes a standalone copy).
- `lora/pytorch_lora_weights.safetensors` (LoRA stages): diffusers' LoRA format, written by the
  pipeline class's own `save_lora_weights`, which `pipe.load_lora_weights(".../policy/lora")` applies.
  A chain of LoRA stages (SFT with LoRA, then GRPO with LoRA on top, ...) is flattened into one adapter:
  each stage's update is s_i B_i A_i (s_i = alpha_i / r_i) and the merged weights are their sum, which is
  the rank-sum adapter A = [A_1; A_2; ...], B = [s_1 B_1, s_2 B_2, ...] at scale 1 (lora_alpha = rank).
  Wan 2.2's low-noise expert gets its own file, `pytorch_lora_weights_transformer_2.safetensors`, for
  `pipe.load_lora_weights(..., weight_name=..., load_into_transformer_2=True)`."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

PIPELINE_DIR, LORA_DIR = "pipeline", "lora"
MODEL_FILE = "diffusion_pytorch_model.safetensors"
LORA_FILE = "pytorch_lora_weights.safetensors"
LORA_FILE_2 = "pytorch_lora_weights_transformer_2.safetensors"
EXPERT_PREFIXES = {"high.": "transformer", "low.": "transformer_2"}  # wan.ExpertPair -> pipeline components
LORA_KEY = ".lora_{}.default.weight"


def exportable(base_folder: Path | None) -> bool:
    """A policy exports when it was loaded from a folder of a diffusers pipeline class (the shapes
    world's folders name a class diffusers does not have)."""
    if base_folder is None or not (Path(base_folder) / "model_index.json").is_file():
        return False
    import diffusers

    return hasattr(diffusers, pipeline_class_name(Path(base_folder)))


def pipeline_class_name(base_folder: Path) -> str:
    return str(json.loads((Path(base_folder) / "model_index.json").read_text()).get("_class_name"))


def expert_modules(transformer: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Pipeline component name -> the diffusers model behind it (one, or Wan 2.2's two experts)."""
    if hasattr(transformer, "high") and hasattr(transformer, "low"):
        return {"transformer": transformer.high, "transformer_2": transformer.low}
    return {"transformer": transformer}


def split_by_component(state: dict[str, torch.Tensor], components: list[str]) -> dict[str, dict[str, torch.Tensor]]:
    """A policy state dict (Wan 2.2: keys under `high.` / `low.`) per pipeline component, in diffusers' names."""
    if components == ["transformer"]:
        return {"transformer": state}
    out: dict[str, dict[str, torch.Tensor]] = {name: {} for name in components}
    for key, value in state.items():
        prefix = next((p for p in EXPERT_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            raise KeyError(f"a two-expert state has a key under neither expert: {key}")
        out[EXPERT_PREFIXES[prefix]][key[len(prefix):]] = value
    return out


def write_pipeline(folder: Path, base_folder: Path, modules: dict[str, torch.nn.Module],
                   states: dict[str, dict[str, torch.Tensor]] | None) -> dict[str, Path]:
    """`folder/pipeline/`: the base's model_index.json and components, with `states` (component ->
    diffusers state dict) written as that component's weights; None: the base transformer(s) as they are.
    Returns the weight file written per component."""
    from safetensors.torch import save_file

    base = Path(base_folder).resolve()
    out = Path(folder) / PIPELINE_DIR
    shutil.rmtree(out, ignore_errors=True)  # a policy saved again into the same folder
    out.mkdir(parents=True)
    written: dict[str, Path] = {}
    for entry in sorted(base.iterdir()):
        if entry.name.startswith("."):
            continue
        if states is not None and entry.name in states:
            continue
        if entry.is_dir():
            os.symlink(entry, out / entry.name, target_is_directory=True)
        else:
            (out / entry.name).write_bytes(entry.read_bytes())  # model_index.json and other small files
    for name, state in (states or {}).items():
        target = out / name
        target.mkdir()
        modules[name].save_config(target)  # the same config.json save_pretrained writes
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(target / MODEL_FILE),
                  metadata={"format": "pt"})
        written[name] = target / MODEL_FILE
    return written


def lora_factors(state: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Module name -> (A (r, in), B (out, r)) of a peft adapter state (`<module>.lora_A.default.weight`)."""
    out = {}
    for key, a in state.items():
        if key.endswith(LORA_KEY.format("A")):
            module = key[: -len(LORA_KEY.format("A"))]
            out[module] = (a, state[module + LORA_KEY.format("B")])
    return out


def flatten_lora_chain(chain: list[tuple[dict[str, torch.Tensor], dict]]) -> tuple[dict[str, torch.Tensor], int]:
    """One adapter equal to a chain of merged ones: [(peft adapter state, {"rank", "alpha"}), ...] ->
    (module -> A / B in diffusers' `<module>.lora_A.weight` names, total rank), at scale 1. A module a
    stage did not target gets zero rows there, so every module has the same rank."""
    factors = [(lora_factors(state), float(spec["alpha"]) / float(spec["rank"]), int(spec["rank"]))
               for state, spec in chain]
    modules = sorted({m for f, _, _ in factors for m in f})
    rank = sum(r for _, _, r in factors)
    out: dict[str, torch.Tensor] = {}
    for module in modules:
        a_parts, b_parts = [], []
        shape = next(f[module] for f, _, _ in factors if module in f)
        for stage, scale, r in factors:
            if module in stage:
                a, b = stage[module]
                a_parts.append(a.float())
                b_parts.append(b.float() * scale)
            else:
                a_parts.append(torch.zeros(r, shape[0].shape[1]))
                b_parts.append(torch.zeros(shape[1].shape[0], r))
        out[f"{module}.lora_A.weight"] = torch.cat(a_parts, 0).contiguous()
        out[f"{module}.lora_B.weight"] = torch.cat(b_parts, 1).contiguous()
    return out, rank


def write_lora(folder: Path, base_folder: Path, components: list[str],
               chain: list[tuple[dict[str, torch.Tensor], dict]]) -> dict[str, str]:
    """`folder/lora/`: the flattened chain in diffusers' LoRA format, one file per pipeline component,
    written by the pipeline class's own `save_lora_weights`. Returns component -> file name."""
    import diffusers

    pipeline_class = getattr(diffusers, pipeline_class_name(Path(base_folder)))
    adapter, rank = flatten_lora_chain(chain)
    out = Path(folder) / LORA_DIR
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    files = {}
    for name, state in split_by_component(adapter, components).items():
        weight_name = LORA_FILE if name == "transformer" else LORA_FILE_2
        metadata = {"r": rank, "lora_alpha": rank, "target_modules": sorted({_target(k) for k in state})}
        pipeline_class.save_lora_weights(out, transformer_lora_layers=state, weight_name=weight_name,
                                         transformer_lora_adapter_metadata=metadata)
        files[name] = f"{LORA_DIR}/{weight_name}"
    return files


def _target(key: str) -> str:
    """The peft target a LoRA key's module matches: its last name (`to_q`), or `to_out.0` for a Sequential's item."""
    parts = key.rsplit(".lora_", 1)[0].split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() else parts[-1]
