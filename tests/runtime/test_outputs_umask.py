"""A real run's outputs under umask 022 are readable by the group and others (weights, checkpoints,
samples, metrics, status, plan, report: every file and folder of the run directory), and a retried
evaluation publishes its outputs whole, its sample index written once (not appended to again)."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from .conftest import ROOT, env, job_dir

RECIPE = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }

stage sft = sft(tiny) {
  data             = shapes.videos(n = 8, seed = 0)
  steps            = 2
  batch            = 4
  lr               = 1e-3
  checkpoint_every = 1
}

stage report = evaluate(sft) {
  against      = [tiny]
  prompts      = shapes.prompts(n = 2, split = test)
  metrics      = [shapes.alignment]
  sample_steps = 2
  save_samples = 2
}
"""


def vpo_022(*args) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "vpolang.cli", *map(str, args)], capture_output=True, text=True,
                         cwd=ROOT, env=env(), timeout=600, preexec_fn=lambda: os.umask(0o022))
    assert out.returncode == 0, out.stderr
    return out


def private(root) -> list[str]:
    """Paths under `root` that the group or others cannot read (or, for folders, enter)."""
    need = stat.S_IRGRP | stat.S_IROTH
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        wanted = need | (stat.S_IXGRP | stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if not stat.S_ISLNK(mode) and mode & wanted != wanted:
            found.append(f"{path.relative_to(root)} {stat.filemode(mode)}")
    return found


def test_outputs_are_readable_under_umask_022_and_a_retried_evaluation_writes_its_index_once(tmp_path):
    (tmp_path / "r.vpo").write_text(RECIPE)
    run_dir = tmp_path / "run"
    vpo_022("run", tmp_path / "r.vpo", "--run-dir", run_dir, "--progress", "quiet")
    vpo_022("report", run_dir)
    assert (run_dir / "report.html").is_file() and (job_dir(run_dir, "sft") / "artifacts" / "policy").is_dir()
    assert private(run_dir) == []

    report = job_dir(run_dir, "report")
    index = report / "artifacts" / "samples" / "index.jsonl"
    first = index.read_text().splitlines()
    assert len(first) == 4 and {json.loads(line)["policy"] for line in first} == {"sft", "tiny"}
    status = json.loads((report / "status.json").read_text())
    # as if the job had been killed after writing its outputs, before it recorded "done": it runs again
    (report / "status.json").write_text(json.dumps({**status, "state": "running"}))
    vpo_022("run", tmp_path / "r.vpo", "--run-dir", run_dir, "--progress", "quiet")
    assert json.loads((report / "status.json").read_text())["attempts"] == 2
    assert index.read_text().splitlines() == first  # the same records, once
    assert sorted(p.name for p in (report / "artifacts").iterdir()) == ["metrics", "samples"]  # no temporaries
    assert private(run_dir) == []
