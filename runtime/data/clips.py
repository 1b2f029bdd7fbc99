"""Videos inside an artifact folder: one watchable file per clip under `videos/` plus, optionally, all
clips in one safetensors file so later jobs read the pixels back exactly (no codec loss).

Each clip's record carries its path and size (frames, height, width): codecs pad odd sizes to even,
and the size lets a reader crop the padding back off."""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import DataError
from .video import read_video, write_video

VIDEO_DIR = "videos"


def store_clips(root: Path, clips: dict[str, torch.Tensor], *, fps: int = 8, suffix: str = ".mp4",
                tensors: str | None = None, dtype: torch.dtype = torch.float16) -> dict[str, dict]:
    """Writes each clip as root/videos/<key><suffix> (and all into root/<tensors>); returns per key
    {"path": relative path, "size": [F, H, W]} for the caller's index records."""
    (root / VIDEO_DIR).mkdir(parents=True, exist_ok=True)
    out = {}
    for key, clip in clips.items():
        written = write_video(root / VIDEO_DIR / f"{key}{suffix}", clip, fps)
        out[key] = {"path": written.relative_to(root).as_posix(), "size": list(clip.shape[:1]) + list(clip.shape[2:])}
    if tensors:
        save_tensors(root / tensors, {k: v.detach().to("cpu", dtype).contiguous() for k, v in clips.items()})
    return out


def load_clip(root: Path, key: str, record: dict, exact: dict[str, torch.Tensor] | None,
              where: tuple[Path, int]) -> torch.Tensor:
    """A clip from the exact tensors when present, else decoded from its file and cropped to its size."""
    if exact is not None:
        if key not in exact:
            raise DataError(where[0], f"clip {key!r} missing from the tensors file", where[1])
        return exact[key].float()
    frames, h, w = record["size"]
    video = read_video(root / record["path"])
    if len(video) != frames:
        raise DataError(root / record["path"], f"has {len(video)} frames, the index says {frames}")
    return video[:, :, :h, :w]


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    from vpolang.atomic import atomic_path

    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def load_tensors(path: Path) -> dict[str, torch.Tensor] | None:
    """All tensors of a safetensors file, or None when the artifact was written without them."""
    if not path.is_file():
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except SafetensorError as exc:
        raise DataError(path, f"damaged tensors file ({exc})") from exc
