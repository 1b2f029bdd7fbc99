"""Paths in a recipe are relative to the recipe's directory, whatever the working directory of the job."""
from __future__ import annotations

from pathlib import Path


def resolve_path(path: str | Path, recipe_dir: str | Path) -> Path:
    """`~` expands; an absolute path stays; a relative one is taken from `recipe_dir`."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(recipe_dir) / p
