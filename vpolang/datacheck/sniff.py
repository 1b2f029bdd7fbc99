"""Is this file a video? Its container, told from its first bytes (never decoded: no cv2 in the compiler).

The runtime decodes with OpenCV's FFmpeg, which reads any of these containers; a file that starts like
none of them (a caption, an image, a download error page) fails there with "cannot open video"."""
from __future__ import annotations

from pathlib import Path

HEAD_BYTES = 192  # enough for an MPEG-TS sync byte at 188; nothing else needs more than 12
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")  # frames of a video stored as a folder
NOT_VIDEOS = {".txt", ".json", ".jsonl", ".csv", ".md"}  # captions and notes a broad glob also matches
MAX_LISTED = 10_000  # entries of a frame folder looked at

_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")  # mp4, mov, m4v, 3gp
_PREFIXES = {
    b"\x1a\x45\xdf\xa3": "webm/mkv (EBML)",
    b"GIF87a": "gif", b"GIF89a": "gif",
    b"OggS": "ogg", b"FLV": "flv",
    b"\x00\x00\x01\xba": "mpeg-ps", b"\x00\x00\x01\xb3": "mpeg video",
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11": "asf/wmv",
    b"\x00\x00\x00\x01": "h.264/h.265 stream",
}
KNOWN = "mp4/mov (ftyp box), webm/mkv (EBML), avi (RIFF AVI), gif (GIF8), ogg, flv, mpeg-ps/ts, asf"


def container(head: bytes) -> str | None:
    """The container these first bytes open, or None when they open no video container."""
    if len(head) >= 8 and head[4:8] in _ISO_BOXES:
        return "mp4/mov"
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "mpeg-ts"
    return next((name for prefix, name in _PREFIXES.items() if head.startswith(prefix)), None)


def why_not_a_video(path: Path) -> str | None:
    """None when `path` looks like a video the runtime can open (a container, or a folder of frames)."""
    try:
        if path.is_dir():
            return None if _has_frames(path) else f"folder has no frame images ({', '.join(IMAGE_SUFFIXES)})"
        if not path.is_file():  # a FIFO or device would block the read or never end
            return "is not a regular file"
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return "is empty"
    if container(head) is None:
        return f"is not a video: its first bytes match no container the runtime reads ({KNOWN})"
    return None


def _has_frames(folder: Path) -> bool:
    for i, entry in enumerate(folder.iterdir()):
        if i >= MAX_LISTED:
            return False
        if entry.suffix.lower() in IMAGE_SUFFIXES and not entry.name.startswith("."):
            return True
    return False
