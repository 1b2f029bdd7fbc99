"""`vpo report`: a real run (SFT then an evaluation with samples) rendered to one self-contained page
that headless Chromium loads with every image decoded and every section present."""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.apt import Unavailable, ensure_installed, which
from tests.runtime.conftest import vpo

RECIPE = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64, frames = 4 }

stage tuned = sft(tiny) {
  data  = shapes.videos(n = 16, seed = 1)
  steps = 6
  batch = 4
  lr    = 1e-3
}

stage report = evaluate(tuned) {
  against      = [tiny]
  prompts      = shapes.prompts(n = 3, split = test)
  metrics      = [shapes.alignment, shapes.sharpness]
  sample_steps = 2
}
"""
SECTIONS = ("plan", "jobs", "curves", "samples", "evaluation")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    (root / "r.vpo").write_text(RECIPE)
    vpo("run", root / "r.vpo", "--run-dir", root / "run", "--progress", "quiet")
    return root / "run"


@pytest.fixture(scope="module")
def chromium():
    try:
        ensure_installed(["chromium"], ["chromium"])
    except Unavailable as exc:
        pytest.skip(f"headless Chromium unavailable: {exc}")
    return which("chromium")


def test_page_is_self_contained_with_every_section(run_dir, tmp_path):
    out = vpo("report", run_dir, "-o", tmp_path / "r.html")
    assert "wrote" in out.stdout
    page = (tmp_path / "r.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    assert page.count("data:image/gif;base64,") == 6  # 3 prompts x (tuned, tiny)
    assert "tuned: loss" in page and "<polyline" in page  # the SFT loss curve
    assert "alignment" in page and "sharpness" in page  # the evaluation table


def test_chromium_renders_it_without_broken_images(run_dir, tmp_path, chromium):
    vpo("report", run_dir, "-o", tmp_path / "r.html")
    base = [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--virtual-time-budget=5000", "--dump-dom", f"file://{tmp_path / 'r.html'}"],
                         capture_output=True, text=True, timeout=120)
    assert 'data-rendered="ok"' in dom.stdout, dom.stderr[-2000:]
    for section in SECTIONS:
        assert f'id="{section}"' in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run([*base, "--window-size=1280,2000", f"--screenshot={shot}", f"file://{tmp_path / 'r.html'}"],
                   capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000  # a rendered page, not a blank one


def test_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path):
    out = vpo("report", tmp_path, check=False)
    assert out.returncode == 1 and "is not a vpo run directory" in out.stderr and "Traceback" not in out.stderr


def test_a_failed_job_is_reported_not_fatal(run_dir, tmp_path):
    import json
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    status = next((copy / "report").glob("*/status.json"))
    record = json.loads(status.read_text())
    record.update(state="failed", error="stage `report` (r.vpo:13:1): out of memory")
    status.write_text(json.dumps(record))
    shutil.rmtree(status.parent / "artifacts")
    out = vpo("report", copy, "-o", tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert out.returncode == 0 and "state-failed" in page and "out of memory" in page
    assert "no evaluation has finished yet" in page
