"""The pre-commit hooks and the CI commands docs/ci.md documents, run as a CI job would run them."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

from tests.runtime.conftest import ROOT, vpo

EXAMPLES = sorted((ROOT / "examples").glob("*.vpo"))
# The shared VideoAlign recipe must stay byte-identical to its source, whose `dataset` run is not aligned.
NOT_CANONICAL = {"videoalign.vpo"}


def hooks() -> dict[str, dict]:
    return {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def run_entry(entry: str, files: list[Path]):
    program, *args = shlex.split(entry)
    assert program == "vpo"  # the console script pyproject.toml installs
    return vpo(*args, *files, check=False)


def test_hooks_match_vpo_files_and_pass_on_the_examples():
    found = hooks()
    assert set(found) == {"vpo-lint", "vpo-fmt"}
    for hook in found.values():
        assert re.search(hook["files"], "recipes/train.vpo") and not re.search(hook["files"], "train.py")
        assert hook["language"] == "python"
    assert run_entry(found["vpo-lint"]["entry"], EXAMPLES).returncode == 0
    canonical = [p for p in EXAMPLES if p.name not in NOT_CANONICAL]
    assert run_entry(found["vpo-fmt"]["entry"], canonical).returncode == 0


def test_fmt_hook_fails_on_a_file_it_would_reformat(tmp_path):
    messy = tmp_path / "messy.vpo"
    messy.write_text("vpo 0.1\nuse std.shapes\nmodel   m=shapes.tiny_dit\n")
    out = run_entry(hooks()["vpo-fmt"]["entry"], [messy])
    assert out.returncode == 1 and "messy.vpo" in out.stdout + out.stderr
    assert messy.read_text() == "vpo 0.1\nuse std.shapes\nmodel   m=shapes.tiny_dit\n"  # --check writes nothing


def test_github_annotations_and_sarif(tmp_path):
    bad = tmp_path / "bad.vpo"
    bad.write_text("vpo 0.1\nuse std.shapes\n\nstage s = sft(shapes.tiny_dit) {\n  data = shapes.videos(n = 8)\n"
                   "  lr = 2\n}\n")
    out = vpo("lint", bad, "--format", "github", check=False)
    assert out.returncode == 1
    assert re.search(rf"^::error file={re.escape(str(bad))},line=6,col=\d+", out.stdout, re.M), out.stdout
    sarif = json.loads(vpo("lint", bad, "--format", "sarif", check=False).stdout)
    assert sarif["version"] == "2.1.0"
    [result] = [r for r in sarif["runs"][0]["results"] if r["level"] == "error"]
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 6


def test_plan_diff_for_a_pull_request_comment(tmp_path):
    old = (ROOT / "examples" / "quickstart.vpo").read_text()
    (tmp_path / "old.vpo").write_text(old)
    new = tmp_path / "new.vpo"
    new.write_text(old.replace("steps = 1000", "steps = 2000", 1))
    assert new.read_text() != old
    out = vpo("plan", new, "--diff", tmp_path / "old.vpo")
    assert out.stdout.startswith("### vpo plan diff: `old` -> `new`"), out.stdout  # the comment's heading
    assert re.search(r"^\| ~ \| `sft` \| sft \|.*\| `steps`: 1000 -> 2000 \|$", out.stdout, re.M), out.stdout
    assert re.search(r"^\| ~ \| `rl` \| grpo \|.*\| inputs \|$", out.stdout, re.M)  # downstream re-runs
