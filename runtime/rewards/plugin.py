"""`plugin { entry, heads, path, options, device, bounded }`: a user's reward class, found by
`module.path:Class` or by name in the `vpo.rewards` entry-point group of the installed packages.

The compiler only checked the entry's syntax; importing happens here, when the job starts. The class
is built with `options` (`key=value` strings) as keyword arguments, plus `path=` when the recipe sets
one. An instance of vpo's `Reward` is used as it is (its heads must be the declared ones); any other
object needs `score(videos, prompts)` returning a (B,) tensor (one score) or {head: (B,) tensor}.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path

import torch

from runtime.errors import JobError

from .base import DeviceNeeds, Reward

GROUP = "vpo.rewards"


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def resolve(entry: str, reward: str):
    """The object `entry` names: `module:attr.path` imported, or an entry point of the `vpo.rewards` group."""
    target = entry
    if ":" not in entry:
        found = _entry_points()
        if entry not in found:
            listed = ", ".join(sorted(found)) or "none is installed"
            raise JobError(f"reward `{reward}`: no `{GROUP}` entry point named `{entry}` ({listed}); install the "
                           "package that provides it, or write `module.path:Class`")
        target = found[entry]
    module_name, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - a user's module: any import failure is reported, not raised
        raise JobError(f"reward `{reward}`: importing `{module_name}` (plugin `{entry}`) failed: "
                       f"{type(e).__name__}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise JobError(f"reward `{reward}`: `{module_name}` has no `{attr}` (plugin `{entry}`)")
        obj = getattr(obj, part)
    return obj


class PluginReward(Reward):
    """Any object with `score(videos, prompts)` behind the reward protocol."""

    def __init__(self, impl, name: str, heads: list[str], device: str, bounded: bool):
        self.impl, self.name, self.declared = impl, name, list(heads)
        self.heads = tuple(heads) or (name,)
        self.bounded = bounded
        self.needs = DeviceNeeds(device=device, memory_gib=0.0, max_batch=getattr(impl, "max_batch", None))

    def _move(self, device: torch.device) -> None:
        if hasattr(self.impl, "to"):
            self.impl.to(device)

    def score(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        out = self.impl.score(videos, prompts)
        if isinstance(out, torch.Tensor):
            if self.declared:
                raise JobError(f"reward `{self.name}`: the plugin returned one score, the recipe declares heads "
                               f"{self.declared}")
            return {self.name: out}
        if isinstance(out, dict):
            if not self.declared:
                raise JobError(f"reward `{self.name}`: the plugin returned heads {sorted(out)}; declare them with "
                               "`heads = [...]`")
            return out
        raise JobError(f"reward `{self.name}`: the plugin's score returned {type(out).__name__}, not a tensor or a dict")


def build_plugin(spec: dict, name: str, base_dir: Path | None) -> Reward:
    cls = resolve(spec["entry"], name)
    kwargs = dict(option.split("=", 1) for option in spec["options"])
    if spec.get("path") is not None:
        path = Path(spec["path"])
        kwargs["path"] = Path(base_dir) / path if not path.is_absolute() and base_dir is not None else path
    try:
        impl = cls(**kwargs)
    except Exception as e:  # noqa: BLE001 - the user's constructor
        raise JobError(f"reward `{name}`: building the plugin `{spec['entry']}` failed: {type(e).__name__}: {e}") from None
    if isinstance(impl, Reward):
        if spec.get("heads") and list(impl.heads) != list(spec["heads"]):
            raise JobError(f"reward `{name}`: the recipe declares heads {spec['heads']}, the plugin has {list(impl.heads)}")
        return impl
    if not callable(getattr(impl, "score", None)):
        raise JobError(f"reward `{name}`: the plugin `{spec['entry']}` has no `score(videos, prompts)` method")
    return PluginReward(impl, name, spec["heads"], spec["device"], spec["bounded"])
