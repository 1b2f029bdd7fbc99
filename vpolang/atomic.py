"""Files and folders appear whole or not at all, with the permissions the user's umask asks for.

Everything vpo writes (plans, status files, reports, artifacts, checkpoints) goes through here: written
under a temporary name beside its final place, fsynced, then renamed in one step, so a reader (or a job
killed mid-write) never sees half of one. On any failure the temporary is removed: a full disk leaves no
`.tmp` litter behind. Temporaries are created private (mkstemp: 0600, mkdtemp: 0700) and opened up to
0666 / 0777 minus the umask before they are published, as an ordinary `open`/`mkdir` would have made
them: on a shared cluster a teammate with the umask's permission can read the outputs.

Torch-free: the compiler (plans, reports) and the runtime share it."""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Errors that mean "this place cannot be written" (rather than a bug): reported as one line naming the path.
WRITE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}


def current_umask() -> int:
    """The process umask, read without changing it (Linux: /proc; elsewhere set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~current_umask()


def folder_mode() -> int:
    return 0o777 & ~current_umask()


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    write_bytes(path, text.encode(encoding))


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """A temporary file path beside `final` with its suffix (so writers that pick a format from the
    suffix still work); on success it replaces `final`, on an exception it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=final.suffix or ".tmp",
                                dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        fsync(tmp)
        os.replace(tmp, final)
        fsync(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(final: str | Path) -> Iterator[Path]:
    """An empty temporary folder beside `final`; on success it takes the place of `final` (replacing an
    older one), on an exception it is removed and `final` is left as it was."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        publish_folder(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def staging_folder(final: str | Path) -> Path:
    """An empty folder of a fixed name beside `final` (`.NAME.tmp`), to fill and then hand to
    `publish_folder`, for writers that must name it themselves (several ranks fill it, or a trainer
    fills it over a long loop); a retry first clears what a killed attempt left there."""
    tmp = staging_path(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def staging_path(final: str | Path) -> Path:
    final = Path(final)
    return final.with_name(f".{final.name}.tmp")


def publish_folder(tmp: Path, final: Path) -> None:
    """Puts a filled temporary folder in the place of `final`: permissions from the umask (for what it
    holds too), every file and folder fsynced, then one rename (for writers that must name the
    temporary themselves, e.g. one that several ranks fill)."""
    files, folders = file_mode(), folder_mode()
    os.chmod(tmp, folders)
    for path in sorted(tmp.rglob("*"), reverse=True):  # files before the folders holding them
        if path.is_symlink():
            continue
        # Some writers create private files whatever the umask (safetensors' save_file: 0600).
        mode = path.stat().st_mode
        os.chmod(path, folders if path.is_dir() or mode & 0o111 else files)
        fsync(path)
    fsync(tmp)
    _replace_folder(tmp, final)


def _replace_folder(new: Path, final: Path) -> None:
    # A folder cannot be renamed over a non-empty one: the old one steps aside first. Between the two
    # renames `final` is absent (read as "not produced yet"), never mixed.
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(new, final)
    fsync(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def fsync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_failure(exc: BaseException) -> str | None:
    """`cannot write PATH: no space left on device` when `exc` says a place cannot be written (full,
    read-only, not permitted), else None (a bug keeps its traceback)."""
    if not isinstance(exc, OSError) or exc.errno not in WRITE_ERRNOS:
        return None
    where = exc.filename if exc.filename is not None else "the run directory"
    return f"cannot write {where}: {WRITE_ERRNOS[exc.errno]}"
