"""The CLI end to end (in-process through typer's runner, plus one subprocess for import hygiene)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from vpolang.cli import app
from vpolang.plan import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.vpo"))
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_check_passes_on_every_example():
    result = invoke("check", *EXAMPLES)
    assert result.exit_code == 0, result.output


def test_check_reports_every_error_with_code_span_and_hint(tmp_path):
    bad = tmp_path / "bad.vpo"
    bad.write_text("vpo 0.1\nuse std.models\nmodel m = models.wan21_t2v_1_3b\n"
                   "stage x = grpo(m) { group_size = 1, stepz = 3, lr = 1e-5, prompts = prompts(\"p.txt\"),"
                   " reward = flicker }\n")
    result = invoke("check", str(bad), "--format", "json")
    assert result.exit_code == 1
    diags = json.loads(result.stdout)["diagnostics"]
    codes = {(d["code"], d["span"]["line"], d["span"]["col"]) for d in diags}
    assert ("E0203", 4, 34) in codes  # the value of `group_size = 1`
    assert any(d["code"] == "E0201" and d["hint"] == "did you mean `steps`?" for d in diags)
    assert any(d["code"] == "E0101" and "flicker" in d["message"] for d in diags)


def test_github_and_sarif_formats(tmp_path):
    bad = tmp_path / "bad.vpo"
    bad.write_text("vpo 0.1\nstage x = sft(nope) { steps = 0 }\n")
    gh = invoke("check", str(bad), "--format", "github")
    assert gh.exit_code == 1 and gh.stdout.startswith("::error file=")
    sarif = json.loads(invoke("check", str(bad), "--format", "sarif").stdout)
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]


def test_set_override_and_unknown_param_points_at_command_line():
    ok = invoke("plan", str(ROOT / "examples/teleboost.vpo"), "--set", "scale=0.1", "--format", "json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["params"] == {"scale": 0.1}
    bad = invoke("check", str(ROOT / "examples/teleboost.vpo"), "--set", "scal=0.1", "--format", "json")
    assert bad.exit_code == 1
    diag = json.loads(bad.stdout)["diagnostics"][0]
    assert diag["code"] == "E0112" and diag["span"]["file"] == "<command line>" and "scale" in diag["hint"]


def test_plan_formats_and_saved_plan(tmp_path):
    out = tmp_path / "plan.json"
    table = invoke("plan", str(ROOT / "examples/quickstart.vpo"), "-o", str(out))
    assert table.exit_code == 0 and "pref.pairs.synthetic" in table.stdout
    assert json.loads(out.read_text())["schema_version"] == SCHEMA_VERSION == "4.1"
    dot = invoke("plan", str(ROOT / "examples/quickstart.vpo"), "--format", "dot")
    assert '"sft" -> "rl";' in dot.stdout
    mermaid = invoke("plan", str(ROOT / "examples/quickstart.vpo"), "--format", "mermaid")
    assert "n_sft --> n_rl" in mermaid.stdout


def test_plan_diff_is_a_markdown_table(tmp_path):
    new = tmp_path / "quick.vpo"
    new.write_text((ROOT / "examples/quickstart.vpo").read_text().replace("steps      = 100", "steps      = 90"))
    result = invoke("plan", str(new), "--diff", str(ROOT / "examples/quickstart.vpo"))
    assert result.exit_code == 0, result.output
    assert "| ~ | `pref` | dpo |" in result.stdout and "`steps`: 100 -> 90" in result.stdout
    assert "| ~ | `report` |" in result.stdout  # downstream of the change: its input hash moved


def test_unreadable_and_binary_inputs_are_diagnostics(tmp_path):
    binary = tmp_path / "b.vpo"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    result = invoke("check", str(binary), str(tmp_path / "missing.vpo"), "--format", "json")
    assert result.exit_code == 1
    codes = [d["code"] for d in json.loads(result.stdout)["diagnostics"]]
    assert codes == ["E0001", "E0001"]


def test_compile_commands_do_not_import_the_gpu_stack():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from vpolang.cli import app\n"
        f"examples = {EXAMPLES!r}\n"
        "r = CliRunner()\n"
        "assert r.invoke(app, ['check', *examples]).exit_code == 0\n"
        "assert r.invoke(app, ['lint', *examples]).exit_code == 0\n"
        "assert r.invoke(app, ['fmt', '--check', examples[0]]).exit_code == 0\n"
        "assert r.invoke(app, ['explain', 'grpo']).exit_code == 0\n"
        "for e in examples:\n"
        "    assert r.invoke(app, ['plan', e, '--format', 'json']).exit_code == 0\n"
        "heavy = {'torch', 'diffusers', 'transformers', 'deepspeed', 'submitit', 'runtime', 'numpy', 'cv2'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_fmt_rewrites_through_a_symlink_keeping_the_mode_and_leaving_no_temp(tmp_path):
    real = tmp_path / "recipes" / "messy.vpo"
    real.parent.mkdir()
    real.write_text("vpo 0.1\nuse std.shapes\nmodel   m=shapes.tiny_dit\n")
    real.chmod(0o640)
    link = tmp_path / "messy.vpo"
    link.symlink_to(real)
    result = invoke("fmt", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and "model m = shapes.tiny_dit" in real.read_text()
    assert real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["messy.vpo"]


def test_fmt_interrupted_before_publishing_leaves_the_old_text(tmp_path, monkeypatch):
    messy = tmp_path / "messy.vpo"
    text = "vpo 0.1\nuse std.shapes\nmodel   m=shapes.tiny_dit\n"
    messy.write_text(text)

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("vpolang.atomic.os.replace", disk_full)
    result = invoke("fmt", str(messy))
    assert result.exit_code == 1 and "not formatted" in result.output and "Traceback" not in result.output
    assert messy.read_text() == text and [p.name for p in tmp_path.iterdir()] == ["messy.vpo"]
