"""Is a local folder a diffusers pipeline folder? The one test both `vpo check` and the runtime's loaders use.

Torch-free and cheap (two `stat`s): a folder without `model_index.json` or `transformer/config.json` is
not something diffusers can load from disk, and diffusers then falls back to the Hub and says to check
the internet connection; vpo never downloads, so it names what is missing instead."""
from __future__ import annotations

from pathlib import Path

REQUIRED = ("model_index.json", "transformer/config.json")


def missing_diffusers_files(folder: str | Path) -> list[str]:
    """The files of the diffusers layout `folder` lacks, relative to it ([] when it has them all)."""
    root = Path(folder)
    return [name for name in REQUIRED if not (root / name).is_file()]


def not_a_diffusers_folder(folder: str | Path, shown: str | None = None) -> str | None:
    """Why `folder` is not a diffusers pipeline folder, in one sentence naming it `shown` (default: the
    path itself); None when it is one."""
    root = Path(folder)
    name = shown or str(root)
    if not root.is_dir():
        return f"{name} is not a folder" if root.exists() else f"model folder {name} does not exist"
    missing = missing_diffusers_files(root)
    if not missing:
        return None
    return (f"{name} is not a diffusers model folder: it has no {' and no '.join(missing)} "
            "(expected the pipeline layout model_index.json, transformer/, vae/, text_encoder/, tokenizer/, "
            "scheduler/, as `save_pretrained` writes it)")
