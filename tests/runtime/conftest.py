"""A tiny recipe and helpers to run plans for real (subprocesses, as users do)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TINY = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }

stage sft = sft(tiny) {
  data             = shapes.videos(n = 32, seed = 0)
  steps            = STEPS
  batch            = 4
  lr               = 1e-3
  checkpoint_every = 4
}

stage rl = grpo(sft) {
  prompts          = shapes.prompts(n = 4)
  group_size       = 2
  batch            = 2
  steps            = 2
  lr               = 1e-4
  reward           = shapes.alignment
  checkpoint_every = 1
}
"""


@pytest.fixture
def tiny_recipe(tmp_path):
    def write(steps: int = 12, extra: str = "") -> Path:
        path = tmp_path / "tiny.vpo"
        path.write_text(TINY.replace("STEPS", str(steps)) + extra)
        return path
    return write


def env() -> dict:
    e = dict(os.environ)
    e.setdefault("OMP_NUM_THREADS", "1")  # deterministic and polite on a 2-core machine
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def vpo(*args, check=True, timeout=600) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "vpolang.cli", *map(str, args)], capture_output=True, text=True,
                         cwd=ROOT, env=env(), timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"vpo {' '.join(map(str, args))} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def job_dir(run_dir: Path, job: str) -> Path:
    current = (run_dir / job / "current").read_text().strip()
    return run_dir / job / current


def status(run_dir: Path, job: str) -> dict:
    folders = sorted((run_dir / job).glob("*/status.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(folders[-1].read_text())
