"""One bounded reading of each dataset a recipe names: its item count (for the planner's estimate) and the
problems the runtime would otherwise hit only after the job started (for `vpo check`).

Paths resolve as the runtime's `resolve_path` does (relative to the recipe's folder). Data that is not on
this machine (a cluster path) is not judged: a missing file is a problem only where its folder exists here
and is not the recipe's own folder (a recipe checked out without its data says nothing). Every reading is
capped: MAX_BYTES of each text file, HEAD_BYTES of at most MAX_SNIFFED videos, MAX_MATCHES glob entries."""
from __future__ import annotations

import glob
import math
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from .lines import LineProblem, field_of, json_records, read_prefix, text_lines
from .sniff import NOT_VIDEOS, why_not_a_video

MAX_SNIFFED = 64  # videos (and captions) checked per dataset
MAX_MATCHES = 1_000_000  # glob entries listed
MAX_PROBLEMS = 5  # per dataset: the first few say what is wrong
LABELS = ("good", "normal", "bad")


@dataclass(frozen=True)
class Problem:
    code: str
    message: str  # said at the recipe line of the dataset value
    field: str = "path"  # the field of the dataset value it is about: path | captions
    file: str | None = None  # the data file (as shown) and line the note names
    line: int | None = None
    detail: str | None = None
    hint: str | None = None


@dataclass
class Scan:
    count: int | None  # items; None when the data is not on this machine
    problems: list[Problem] = field(default_factory=list)

    def add(self, problem: Problem) -> bool:
        """False once MAX_PROBLEMS are recorded: the caller stops looking."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        return len(self.problems) < MAX_PROBLEMS


class Files:
    """Paths of one recipe's data, resolved and shown relative to the recipe's folder."""

    def __init__(self, base: Path):
        self.base = base.resolve()

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base / p

    def show(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.base))
        except ValueError:
            return str(path)

    def is_expected_here(self, path: Path) -> bool:
        """A path that does not exist, in a folder that does (and is not the recipe's own)."""
        parent = path.parent
        return parent.is_dir() and parent.resolve() != self.base


# ---- one scan per dataset kind ---------------------------------------------------------------------------
def scan_text_file(kind: str, path: str, files: Files) -> Scan:
    """prompts, pairs and labels files."""
    resolved = files.resolve(path)
    shown = files.show(resolved)
    label = {"prompts": "prompt file", "pairs": "pairs file", "labels": "labels file"}[kind]
    if not resolved.exists():
        if not files.is_expected_here(resolved):
            return Scan(None)
        return Scan(None, [Problem("E0404", f"{label} `{shown}` does not exist",
                                   hint=f"{files.show(resolved.parent)}/ is here but holds no {resolved.name}; "
                                   "paths are relative to the recipe's folder")])
    if not resolved.is_file():
        return Scan(None, [Problem("E0404", f"{label} `{shown}` is not a file", hint=f"name a {kind} file")])
    prefix = read_prefix(resolved)
    scan, items = Scan(None), 0
    try:
        items = READERS[kind](prefix, resolved, shown, files, scan)
    except LineProblem as exc:
        scan.add(Problem("E0403", f"{label} `{shown}` has a malformed line {exc.line}", file=shown,
                         line=exc.line, detail=exc.message, hint=f"fix line {exc.line} of {shown}"))
    scan.count = prefix.extrapolate(items)
    if not items and not scan.problems and prefix.read >= prefix.size:
        ties = " (ties are skipped)" if kind == "pairs" else ""
        scan.add(Problem("E0406", f"{label} `{shown}` has no {kind}{ties}", hint=f"add {kind} to {shown}"))
    return scan


def _prompts(prefix, path: Path, shown: str, files: Files, scan: Scan) -> int:
    if path.suffix.lower() == ".jsonl":
        items = 0
        for lineno, record in json_records(prefix, '{"prompt": ...}'):
            if not field_of(record, "prompt", str, lineno).strip():
                raise LineProblem(lineno, "empty prompt")
            items += 1
        return items
    return sum(1 for _, line in text_lines(prefix) if line.strip() and not line.strip().startswith("#"))


def _pairs(prefix, path: Path, shown: str, files: Files, scan: Scan) -> int:
    items, budget = 0, [MAX_SNIFFED]
    for lineno, record in json_records(prefix, '{"prompt", "chosen", "rejected"[, "tie"]}'):
        tie = field_of(record, "tie", bool, lineno) if "tie" in record else False
        field_of(record, "prompt", str, lineno)
        sides = [(side, field_of(record, side, str, lineno)) for side in ("chosen", "rejected")]
        items += 1
        if not tie:  # the runtime skips ties without reading their videos
            for side, video in sides:
                _referenced_video(path, shown, lineno, side, video, scan, budget)
    return items


def _labels(prefix, path: Path, shown: str, files: Files, scan: Scan) -> int:
    items, budget = 0, [MAX_SNIFFED]
    for lineno, record in json_records(prefix, '{"prompt", "video", "label": "good" | "normal" | "bad" | score}'):
        field_of(record, "prompt", str, lineno)
        _check_label(field_of(record, "label", (str, int, float), lineno), lineno)
        _referenced_video(path, shown, lineno, "", field_of(record, "video", str, lineno), scan, budget)
        items += 1
    return items


READERS = {"prompts": _prompts, "pairs": _pairs, "labels": _labels}


def _check_label(value, lineno: int) -> None:
    if isinstance(value, str) and value.strip().lower() in LABELS:
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return
    raise LineProblem(lineno, f"label must be good, normal, bad or a finite number, got {value!r}")


def _referenced_video(data: Path, shown: str, lineno: int, side: str, video: str, scan: Scan,
                      budget: list[int]) -> None:
    """A video a pairs/labels line points at (relative to that file): it exists and is a video."""
    if budget[0] <= 0:
        return
    budget[0] -= 1
    target = data.parent / video
    what = f"{side} video" if side else "video"
    if not target.exists():
        if Path(video).is_absolute() and not target.parent.is_dir():
            return  # an absolute path into a tree that is not on this machine
        scan.add(Problem("E0405", f"`{shown}` line {lineno} names a {what} that does not exist", file=shown,
                         line=lineno, detail=f"{what} `{video}` (looked for {target})",
                         hint="video paths in the file are relative to the file's own folder"))
        return
    why = why_not_a_video(target)
    if why:
        scan.add(Problem("E0402", f"`{shown}` line {lineno} names a {what} that the runtime cannot read",
                         file=shown, line=lineno, detail=f"{what} `{video}` {why}"))


# ---- captioned videos: a glob and captions ---------------------------------------------------------------
def scan_videos(pattern: str, captions: str | None, files: Files) -> Scan:
    resolved = files.resolve(pattern)
    folder = _glob_root(resolved)
    if not folder.is_dir():
        if not files.is_expected_here(folder):
            return Scan(None)
        return Scan(None, [Problem("E0401", f"no videos match `{pattern}`",
                                   hint=f"folder {files.show(folder)} does not exist")])
    matched = sorted(Path(p) for p in islice(glob.iglob(str(resolved), recursive=True), MAX_MATCHES))
    videos = [p for p in matched if p.suffix.lower() not in NOT_VIDEOS or p.is_dir()]  # stat only the few
    scan = Scan(len(videos))
    if not videos:
        others = f"{len(matched)} files match but none is a video" if matched else \
            f"nothing in {files.show(folder)} matches it"
        scan.add(Problem("E0401", f"no videos match `{pattern}`", hint=f"{others}; paths are relative to the "
                         "recipe's folder"))
        return scan
    readable = []
    for video in videos[:MAX_SNIFFED]:
        why = why_not_a_video(video)
        if not why:
            readable.append(video)
        elif not scan.add(Problem("E0402", f"`{files.show(video)}`, matched by `{pattern}`, {why}",
                                  hint="narrow the glob to the video files, e.g. `*.mp4`")):
            return scan
    _check_captions(readable, captions, files, scan)  # a file that is no video needs no caption too
    return scan


def _glob_root(pattern: Path) -> Path:
    """The folder above the first path part with a glob character."""
    parts = pattern.parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts) - 1)
    return Path(*parts[:fixed]) if fixed else Path(parts[0])


def _check_captions(videos: list[Path], captions: str | None, files: Files, scan: Scan) -> None:
    table = None
    if captions:
        table = _caption_table(files.resolve(captions), files, scan)
        if table is None:  # not on this machine, or already reported
            return
    for video in videos:
        if _caption_of(video, table):
            continue
        sidecar = video.with_suffix(".txt") if video.is_file() else video.parent / f"{video.name}.txt"
        elsewhere = f"not in {captions} and " if captions else ""
        if not scan.add(Problem("E0408", f"video `{files.show(video)}` has no caption", field="captions"
                                if captions else "path", hint=f"{elsewhere}no non-empty {sidecar.name} beside it")):
            return


def _caption_table(path: Path, files: Files, scan: Scan) -> dict[str, str | None] | None:
    """As the runtime's: keys are resolved video paths and bare names (None: a name two videos share)."""
    shown = files.show(path)
    if not path.is_file():
        if path.exists() or files.is_expected_here(path):
            scan.add(Problem("E0404", f"captions file `{shown}` does not exist", field="captions",
                             hint="captions are a JSONL file of {\"video\", \"caption\"} records"))
        return None
    table: dict[str, str | None] = {}
    prefix = read_prefix(path)
    try:
        for lineno, record in json_records(prefix, '{"video": ..., "caption": ...}'):
            video, caption = record.get("video"), record.get("caption")
            if not isinstance(video, str) or not isinstance(caption, str) or not caption.strip():
                raise LineProblem(lineno, 'expected {"video": path, "caption": non-empty text}')
            table[str((path.parent / video).resolve())] = caption.strip()
            name = Path(video).name
            table[name] = None if name in table and table[name] != caption.strip() else caption.strip()
    except LineProblem as exc:
        scan.add(Problem("E0403", f"captions file `{shown}` has a malformed line {exc.line}", field="captions",
                         file=shown, line=exc.line, detail=exc.message, hint=f"fix line {exc.line} of {shown}"))
        return None
    return table if prefix.read >= prefix.size else None  # part read: a caption may be in the rest


def _caption_of(video: Path, table: dict[str, str | None] | None) -> bool:
    if table is not None and (table.get(str(video.resolve())) or table.get(video.name)):
        return True
    sidecar = video.with_suffix(".txt") if video.is_file() else video.parent / f"{video.name}.txt"
    if not sidecar.is_file():
        return False
    try:
        with sidecar.open("rb") as handle:
            return bool(handle.read(4096).strip())
    except OSError:
        return False
