"""Video files <-> tensors (F, 3, H, W) in [-1, 1].

Reading decodes with OpenCV (any container/codec its FFmpeg has: mp4, avi, webm, ...) or a folder of
image frames, takes `frames` evenly spaced frames and scales/centre-crops them to `resolution` (h, w).
Writing gives an mp4 (MPEG-4 part 2, lossy), a lossless FFV1 .avi, or a folder of PNG frames."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import torch

from vpolang.atomic import atomic_folder, atomic_path
from vpolang.datacheck.sniff import IMAGE_SUFFIXES  # one list for the preflight and the reader

from .errors import DataError

FOURCC = {".mp4": "mp4v", ".avi": "FFV1"}


# ---- reading -------------------------------------------------------------------------------------
def read_video(path: str | Path, frames: int | None = None, resolution: tuple[int, int] | list[int] | None = None
               ) -> torch.Tensor:
    """`frames` evenly spaced frames (all if None) at `resolution` (native if None), as (F, 3, H, W)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "video does not exist")
    raw = _read_folder(path, frames) if path.is_dir() else _read_file(path, frames)
    if resolution is not None:
        raw = [fit(img, tuple(resolution)) for img in raw]
    return from_uint8(np.stack(raw))


def resample(video: torch.Tensor, frames: int | None = None,
             resolution: tuple[int, int] | list[int] | None = None) -> torch.Tensor:
    """A decoded video brought to `frames` and `resolution` as `read_video` would; untouched (exact)
    where it already matches."""
    if frames and frames != len(video):
        video = video[sample_indices(len(video), frames)]
    if resolution is not None and tuple(video.shape[-2:]) != tuple(resolution):
        video = from_uint8(np.stack([fit(img, tuple(resolution)) for img in to_uint8(video)]))
    return video


def sample_indices(total: int, frames: int) -> list[int]:
    """`frames` indices spread evenly over [0, total), first and last included; repeats when the
    video is shorter than `frames` (a 4-frame clip read as 8 shows each frame twice)."""
    if total <= 0 or frames <= 0:
        raise ValueError(f"cannot take {frames} frames of a {total}-frame video")
    return np.linspace(0, total - 1, frames).round().astype(int).tolist()


def fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale so the image covers (h, w), keeping its aspect ratio, then crop the centre."""
    h, w = size
    ih, iw = img.shape[:2]
    if (ih, iw) != (h, w):
        scale = max(h / ih, w / iw)
        shape = (max(w, round(iw * scale)), max(h, round(ih * scale)))
        img = cv2.resize(img, shape, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[top:top + h, left:left + w]


def _read_file(path: Path, frames: int | None) -> list[np.ndarray]:
    total = _frame_count(path)
    got, seen = _grab(path, total, frames)
    if got is None:  # the container over-reported its length: count for real and try again
        got, _ = _grab(path, seen, frames)
    return got


def _frame_count(path: Path) -> int:
    cap = _open(path)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if total <= 0:  # some containers (webm) do not say: count by decoding
        total = 0
        while cap.grab():
            total += 1
    cap.release()
    if total == 0:
        raise DataError(path, "video has no frames")
    return total


def _grab(path: Path, total: int, frames: int | None) -> tuple[list[np.ndarray] | None, int]:
    """The wanted frames of a `total`-frame video, or (None, frames actually there) if it is shorter."""
    wanted = sample_indices(total, frames) if frames else list(range(total))
    wanted_set = set(wanted)
    cap, kept, index = _open(path), {}, 0
    for index in range(max(wanted) + 1):
        if not cap.grab():
            break
        if index in wanted_set:
            ok, img = cap.retrieve()
            if not ok:
                raise DataError(path, f"cannot decode frame {index}")
            kept[index] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        index += 1
    cap.release()
    if len(kept) < len(wanted_set):
        if index == 0:
            raise DataError(path, "cannot decode any frame (unsupported codec?)")
        return None, index
    return [kept[i] for i in wanted], total


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(path, "cannot open video (not a video, or a codec this OpenCV lacks)")
    return cap


def _read_folder(folder: Path, frames: int | None) -> list[np.ndarray]:
    files = frame_files(folder)
    if not files:
        raise DataError(folder, f"folder has no frame images ({', '.join(IMAGE_SUFFIXES)})")
    chosen = [files[i] for i in sample_indices(len(files), frames)] if frames else files
    out = []
    for f in chosen:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f, "cannot read image")
        out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    if len({img.shape for img in out}) > 1:
        raise DataError(folder, "frames differ in size")
    return out


def frame_files(folder: Path) -> list[Path]:
    """Images in the folder in natural order (frame2 before frame10)."""
    files = [f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")]
    return sorted(files, key=lambda f: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", f.name)])


# ---- writing -------------------------------------------------------------------------------------
class CodecUnavailable(RuntimeError):
    pass


def write_video(path: str | Path, video: torch.Tensor, fps: int = 8) -> Path:
    """Write atomically by the suffix: .mp4 (lossy mp4v), .avi (lossless FFV1), none: PNG frames folder.
    If OpenCV cannot encode the container, falls back to a PNG folder named without the suffix.
    Returns the path written. Odd sizes are padded to even (the codecs need it) by repeating the
    last row/column; readers that know the size crop it back."""
    path = Path(path)
    if not path.suffix:
        return write_frames(path, video)
    if path.suffix.lower() not in FOURCC:
        raise ValueError(f"cannot write {path.suffix} videos; use one of {', '.join(FOURCC)} or a folder")
    try:
        with atomic_path(path) as tmp:
            _encode(tmp, _pad_even(to_uint8(video)), fps, FOURCC[path.suffix.lower()])
    except CodecUnavailable:
        return write_frames(path.with_suffix(""), video)
    return path


def write_frames(folder: str | Path, video: torch.Tensor) -> Path:
    """A folder of lossless PNG frames, 000000.png, 000001.png, ..."""
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        for i, img in enumerate(to_uint8(video)):
            if not cv2.imwrite(str(tmp / f"{i:06d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
                raise OSError(f"cannot write frame {i} to {folder}")
    return folder


def _encode(path: Path, frames: np.ndarray, fps: int, fourcc: str) -> None:
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        raise CodecUnavailable(fourcc)
    try:
        for img in frames:
            writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def _pad_even(frames: np.ndarray) -> np.ndarray:
    _, h, w, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


# ---- conversions ---------------------------------------------------------------------------------
def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(F, 3, H, W) in [-1, 1] -> (F, H, W, 3) uint8 RGB."""
    if video.dim() != 4 or video.shape[1] != 3:
        raise ValueError(f"expected a video (F, 3, H, W), got shape {tuple(video.shape)}")
    pixels = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return np.ascontiguousarray(pixels.permute(0, 2, 3, 1).cpu().numpy())


def from_uint8(frames: np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) uint8 RGB -> (F, 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1
