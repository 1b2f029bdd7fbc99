"""The package versions a benchmark ran with, for its results file."""
from __future__ import annotations

from importlib import metadata

PACKAGES = ("torch", "diffusers", "transformers", "deepspeed", "triton")


def versions() -> dict[str, str | None]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found
