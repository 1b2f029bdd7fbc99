"""One atomic writer for everything vpo writes: whole or absent, fsynced, no temporaries left on failure,
and permissions from the user's umask (mkstemp alone would make every output 0600)."""
from __future__ import annotations

import builtins
import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest

from vpolang import atomic
from vpolang.atomic import atomic_folder, atomic_path, write_failure, write_text
from vpolang.plan import Plan, RecipeInfo, save_plan


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750),
                                                          (0o077, 0o600, 0o700)])
def test_files_and_folders_get_the_umask_permissions(tmp_path, mask, file_mode, folder_mode):
    with umask(mask):
        assert atomic.current_umask() == mask
        write_text(tmp_path / "a.txt", "a")
        with atomic_path(tmp_path / "b.gif") as tmp:
            tmp.write_bytes(b"GIF89a")
        with atomic_folder(tmp_path / "folder") as tmp:
            (tmp / "weights.bin").write_bytes(b"0")
    assert mode(tmp_path / "a.txt") == mode(tmp_path / "b.gif") == file_mode
    assert mode(tmp_path / "folder") == folder_mode
    assert (tmp_path / "a.txt").read_text() == "a" and (tmp_path / "folder" / "weights.bin").read_bytes() == b"0"


def test_a_published_folder_opens_up_what_its_writer_made_private(tmp_path):
    with umask(0o022):
        with atomic_folder(tmp_path / "policy") as tmp:
            (tmp / "sub").mkdir(mode=0o700)
            for name, private in (("weights.safetensors", 0o600), ("sub/run.sh", 0o700)):
                (tmp / name).write_text("x")
                os.chmod(tmp / name, private)  # as safetensors' save_file makes its files
    assert mode(tmp_path / "policy" / "weights.safetensors") == 0o644
    assert mode(tmp_path / "policy" / "sub") == mode(tmp_path / "policy" / "sub" / "run.sh") == 0o755


def test_a_saved_plan_is_readable_by_the_group_and_others_under_umask_022(tmp_path):
    plan = Plan(recipe=RecipeInfo(path=str(tmp_path / "r.vpo"), sha256="0" * 64, name="r"), jobs=[])
    with umask(0o022):
        save_plan(plan, tmp_path / "plan.json")
    assert mode(tmp_path / "plan.json") == 0o644


def _full_disk(monkeypatch, path_part: str):
    real_open = builtins.open

    def fake_open(file, mode="r", *args, **kwargs):
        if "w" in mode and path_part in str(file):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    write_text(target, "old")
    _full_disk(monkeypatch, str(tmp_path))
    with pytest.raises(OSError) as caught:
        write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]
    assert write_failure(caught.value).startswith(f"cannot write {tmp_path}/.status.")
    assert write_failure(caught.value).endswith(": no space left on device")


def test_a_failed_folder_leaves_the_old_folder_and_no_temporary(tmp_path):
    with atomic_folder(tmp_path / "policy") as tmp:
        (tmp / "w").write_text("old")
    with pytest.raises(OSError):
        with atomic_folder(tmp_path / "policy") as tmp:
            (tmp / "w").write_text("half")
            raise OSError(errno.EROFS, "Read-only file system", str(tmp / "w"))
    assert [p.name for p in tmp_path.iterdir()] == ["policy"]
    assert (tmp_path / "policy" / "w").read_text() == "old"


def test_write_failure_names_only_unwritable_places():
    assert write_failure(OSError(errno.EROFS, "Read-only file system", "/runs/x")) == \
        "cannot write /runs/x: read-only file system"
    assert write_failure(OSError(errno.ENOENT, "No such file", "/runs/x")) is None
    assert write_failure(ValueError("bug")) is None
