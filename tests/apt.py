"""Debian packages the test suite installs for itself where it can (Slurm, Chromium): apt-get as root,
else a clear reason to skip."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


class Unavailable(RuntimeError):
    pass


def which(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name)
                                       if p.exists()), None)


def ensure_installed(binaries: list[str], packages: list[str]) -> None:
    """Install `packages` unless every one of `binaries` is already on the machine."""
    if all(which(b) for b in binaries):
        return
    if os.geteuid() != 0:
        raise Unavailable(f"{', '.join(packages)} not installed and the tests are not root (cannot apt-get install)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, env=env, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, capture_output=True, env=env,
                       timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        raise Unavailable(f"installing {' '.join(packages)} failed: {exc}") from exc
    missing = [b for b in binaries if not which(b)]
    if missing:
        raise Unavailable(f"after installation these are still missing: {missing}")
