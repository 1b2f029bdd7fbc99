"""Datasets named in a job's config -> prompts and (prompt, video) tensors.

Videos are (F, 3, H, W) in [-1, 1], sampled to the stage's frames and resized to its resolution.
Problems raise JobError naming the file (and line), which the runtime reports at the recipe line."""
from __future__ import annotations

import glob
import json
from pathlib import Path

import torch

from runtime.errors import JobError


def _resolve(path: str, base: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else base / p


def load_prompts(spec: dict, base: Path) -> list[str]:
    kind = spec["kind"]
    if kind == "shapes_prompts":
        from runtime.shapes.world import prompts
        return prompts(spec["n"], spec["split"], spec["seed"])
    if kind != "prompts":
        raise JobError(f"expected a prompts dataset, got {kind}")
    path = _resolve(spec["path"], base)
    if not path.is_file():
        raise JobError(f"prompt file {path} does not exist")
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if path.suffix == ".jsonl":
            try:
                out.append(str(json.loads(line)["prompt"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise JobError(f"{path}:{lineno}: expected a JSON object with a \"prompt\" ({exc})") from exc
        else:
            out.append(line)
    if not out:
        raise JobError(f"prompt file {path} has no prompts")
    return out


def load_videos(spec: dict, base: Path, frames: int, resolution: list[int]) -> tuple[list[str], torch.Tensor]:
    kind = spec["kind"]
    if kind == "shapes_videos":
        from runtime.shapes.data import videos
        if resolution[0] != resolution[1]:
            raise JobError("shapes-world videos are square; set `resolution` to e.g. 16p")
        return videos(spec["n"], spec["seed"], frames, resolution[0])
    if kind != "videos":
        raise JobError(f"expected a videos dataset, got {kind}")
    files = sorted(glob.glob(str(_resolve(spec["path"], base))))
    if not files:
        raise JobError(f"no videos match {spec['path']}")
    captions = _captions(spec, base)
    prompts, clips = [], []
    for f in files:
        caption = captions.get(Path(f).name) or captions.get(f) or _sidecar(f)
        if caption is None:
            raise JobError(f"video {f} has no caption (captions file or a .txt beside it)")
        prompts.append(caption)
        clips.append(read_video(Path(f), frames, resolution))
    return prompts, torch.stack(clips)


def _captions(spec: dict, base: Path) -> dict[str, str]:
    if not spec.get("captions"):
        return {}
    path = _resolve(spec["captions"], base)
    out = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out[Path(rec["video"]).name] = rec["caption"]
        except (ValueError, KeyError, TypeError) as exc:
            raise JobError(f"{path}:{lineno}: expected {{\"video\": ..., \"caption\": ...}} ({exc})") from exc
    return out


def _sidecar(video: str) -> str | None:
    txt = Path(video).with_suffix(".txt")
    return txt.read_text().strip() if txt.is_file() else None


def read_video(path: Path, frames: int, resolution: list[int]) -> torch.Tensor:
    """Decode with OpenCV, take `frames` evenly spaced frames, centre-crop and resize."""
    import cv2
    import numpy as np

    cap = cv2.VideoCapture(str(path))
    raw = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        raw.append(frame)
    cap.release()
    if not raw:
        raise JobError(f"cannot decode video {path}")
    idx = np.linspace(0, len(raw) - 1, frames).round().astype(int)
    h, w = resolution
    out = []
    for i in idx:
        img = cv2.cvtColor(raw[i], cv2.COLOR_BGR2RGB)
        ih, iw = img.shape[:2]
        scale = max(h / ih, w / iw)
        img = cv2.resize(img, (max(w, round(iw * scale)), max(h, round(ih * scale))), interpolation=cv2.INTER_AREA)
        top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        out.append(img[top:top + h, left:left + w])
    video = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return video


def write_video(path: Path, video: torch.Tensor, fps: int = 8) -> None:
    """(F, 3, H, W) in [-1, 1] -> an mp4 (or whatever OpenCV's codec supports) via a temporary name."""
    import os

    import cv2
    import numpy as np

    frames = ((video.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    h, w = frames.shape[1:3]
    tmp = path.with_name(".tmp-" + path.name)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2BGR))
    writer.release()
    os.replace(tmp, path)
