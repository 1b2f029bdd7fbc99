"""Writing a folder in the diffusers pipeline layout: one subfolder per component, model_index.json."""
from __future__ import annotations

import json
from pathlib import Path


def save_pipeline(folder: str | Path, pipeline_class: str, components: dict, **config) -> Path:
    """Save each component with its own `save_pretrained` into `folder/<name>/` and write the index
    diffusers' `DiffusionPipeline.from_pretrained` reads (`[library, class]` per component, None for an
    absent optional one, plus pipeline config values such as `boundary_ratio`)."""
    import diffusers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index: dict = {"_class_name": pipeline_class, "_diffusers_version": diffusers.__version__, **config}
    for name, component in components.items():
        if component is None:
            index[name] = [None, None]
            continue
        component.save_pretrained(folder / name)
        library = type(component).__module__.split(".")[0]
        index[name] = [library, type(component).__name__]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    return folder
