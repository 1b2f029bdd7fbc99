"""Sample videos as data URIs: the evaluation's GIFs, checked and, when large, made smaller so the page
stays light (a 480p, 33-frame GIF per policy and prompt would make a page of tens of megabytes)."""
from __future__ import annotations

import base64
import io
from pathlib import Path

MAX_BYTES = 1 << 20  # larger GIFs are re-encoded at MAX_SIDE
MAX_SIDE = 256


def gif_data_uri(path: Path) -> str | None:
    """The GIF at `path` as a data URI; None when it is missing or not a readable image."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "GIF":
                return None
            if len(data) > MAX_BYTES or max(image.size) > MAX_SIDE * 2:
                data = _smaller(image, ImageSequence)
    except (OSError, UnidentifiedImageError, ValueError, EOFError):
        return None
    return "data:image/gif;base64," + base64.b64encode(data).decode("ascii")


def _smaller(image, sequence) -> bytes:
    scale = MAX_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    frames = [frame.convert("RGB").resize(size) for frame in sequence.Iterator(image)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:],
                   duration=image.info.get("duration", 125), loop=0)
    return out.getvalue()
