"""`vpo report`: a real run (SFT, GRPO, then an evaluation with samples) rendered to one self-contained page
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

stage rl = grpo(tuned) {
  prompts      = shapes.prompts(n = 2)
  reward       = shapes.alignment + 0.5 * shapes.smoothness
  group_size   = 2
  batch        = 1
  steps        = 3
  lr           = 1e-4
  kl           = 0.01
  sample_steps = 2
}

stage report = evaluate(rl) {
  against      = [tuned, tiny]
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
    assert page.count("data:image/gif;base64,") == 9  # 3 prompts x (rl, tuned, tiny)
    assert "tuned: loss" in page and "<polyline" in page  # the SFT loss curve
    for chart in ("rewards per head", "reward", "KL", "advantage", "clipping"):  # GRPO's statistics
        assert f'aria-label="rl: {chart}"' in page
    assert "shapes.alignment" in page and "shapes.smoothness" in page  # one line per reward head
    assert "alignment" in page and "sharpness" in page  # the evaluation table
    assert "The policy minus each baseline, paired" in page and " p=" in page  # rl vs tuned and tiny


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
    record.update(state="failed", error="stage `report` (r.vpo:24:1): out of memory")
    status.write_text(json.dumps(record))
    shutil.rmtree(status.parent / "artifacts")
    out = vpo("report", copy, "-o", tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert out.returncode == 0 and "state-failed" in page and "out of memory" in page
    assert "no evaluation has finished yet" in page


def test_damaged_files_are_skipped_not_fatal(run_dir, tmp_path):
    """Hand-edited or torn files: a status that is not an object, junk metric lines, an evaluation that is
    a list, sample entries naming a missing file, a non-image and a path outside the samples folder."""
    import json
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    tuned = next((copy / "tuned").glob("*/status.json")).parent
    (tuned / "status.json").write_text("[1, 2]")
    with (tuned / "metrics.jsonl").open("a") as handle:
        handle.write('not json\n[1]\n{"step": "x", "loss": 1}\n{"step": 7, "loss": NaN, "tag": "a"}\n{"step": 8, "lo')
    rl = next((copy / "rl").glob("*/status.json"))
    rl.write_text(json.dumps({"state": "done", "started": "yesterday", "finished": 5, "error": {"code": 1}}))
    evaluation = next((copy / "report").glob("*/artifacts"))
    (evaluation / "metrics" / "metrics.json").write_text("[]")
    samples = evaluation / "samples"
    (samples / "not-a-gif.gif").write_text("GIF89a but not really")
    with (samples / "index.jsonl").open("w") as handle:
        for name in ("missing.gif", "not-a-gif.gif", "../../../../plan.json", None):
            handle.write(json.dumps({"policy": "rl", "prompt": "p", "gif": name}) + "\n")
    out = vpo("report", copy, "-o", tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert "data:image/gif" not in page and "its sample files are not readable GIFs" in page
    assert "no evaluation has finished yet" in page and "not started" in page  # tuned's status is unreadable
    assert 'aria-label="tuned: loss"' in page  # the curve keeps its good records


def test_long_runs_are_thinned_keeping_spikes():
    from vpolang.report.svg import line_chart, thin

    points = [(float(i), 1.0) for i in range(100_000)]
    points[54_321] = (54_321.0, 50.0)
    kept = thin(points)
    assert len(kept) <= 402 and (54_321.0, 50.0) in kept and kept == sorted(kept)
    assert kept[0] == points[0] and kept[-1] == points[-1]
    chart = line_chart("long", {"loss": points})
    assert chart.count(",") <= 402 and "50" in chart  # the spike sets the axis


def test_rendering_never_imports_torch(run_dir):
    """The page is read from files alone: a laptop without the GPU stack renders a cluster's run."""
    import sys

    code = ("import sys; from vpolang.report import render_report; page = render_report(sys.argv[1]); "
            "assert 'data:image/gif' in page; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'diffusers', 'transformers', 'runtime')))")
    out = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_graph_edges_never_cross_a_box(tmp_path):
    """TeleBoost's plan has edges that skip columns (rl -> pref, sft -> report): no segment of any edge
    may run through a box, where it would be hidden and the graph would mislead."""
    from vpolang.plan import load_plan
    from vpolang.report.svg import dag_svg
    from tests.runtime.conftest import ROOT

    vpo("plan", ROOT / "examples" / "teleboost.vpo", "-o", tmp_path / "plan.json")
    svg = dag_svg(load_plan(tmp_path / "plan.json").jobs, {})
    boxes = [tuple(map(float, m)) for m in re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" '
                                                       r'height="([\d.]+)"', svg)]
    routes = re.findall(r'<path d="(M[^"]+)" fill="none"', svg)
    assert len(boxes) == 7 and len(routes) == 9 and any("V" in r for r in routes)
    for route in routes:
        x = y = 0.0
        for op, a, b in re.findall(r"([MLHV])([\d.]+)(?:,([\d.]+))?", route):
            nx, ny = {"M": (float(a), float(b or 0)), "L": (float(a), float(b or 0)), "H": (float(a), y),
                      "V": (x, float(a))}[op]
            if op != "M":
                for bx, by, bw, bh in boxes:  # sampled along the segment, box interiors shrunk by 1 px
                    assert not any(bx + 1 < x + (nx - x) * t / 50 < bx + bw - 1 and by + 1 < y + (ny - y) * t / 50
                                   < by + bh - 1 for t in range(51)), (route, (bx, by))
            x, y = nx, ny
