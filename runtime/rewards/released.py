"""Released reward checkpoints behind `video_reward_model`: the folder's layout picks the loader.

A folder written by vpo (`reward_model.json`) loads through video_reward_model.py; a folder in the
released VideoAlign layout (`model_config.json` + `checkpoint-<step>/`) through videoalign.py, on the
base model the reward's `model` names by its `path`.
"""
from __future__ import annotations

from pathlib import Path

from runtime.errors import JobError

from .video_reward_model import VideoRewardModelReward


def _base_folder(spec: dict, base_dir: Path | None) -> Path | None:
    path = spec["model"]["spec"].get("path")
    if path is None:
        return None
    folder = Path(path)
    return Path(base_dir) / folder if not folder.is_absolute() and base_dir is not None else folder


def released_reward_model(folder: Path, spec: dict, name: str, base_dir: Path | None) -> VideoRewardModelReward | None:
    """The reward for a released layout in `folder`, or None when the folder is vpo's own format."""
    from .videoalign import is_videoalign, load_videoalign

    if not is_videoalign(folder):
        return None
    model = load_videoalign(folder, _base_folder(spec, base_dir), spec["frames"], name)
    if list(spec["heads"]) != model.heads:
        raise JobError(f"reward `{name}`: the recipe names heads {list(spec['heads'])} but the VideoAlign model at "
                       f"{folder} scores {model.heads} (its eval_dim, lower-cased, in order)")
    return VideoRewardModelReward(model, name, spec["model"]["spec"]["dtype"])
