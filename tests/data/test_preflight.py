"""The compiler's data preflight: containers told by their first bytes, bounded reading, one reading
shared by `vpo check` and the planner's counts, silence about data that is not on this machine, and the
CLI's report at the recipe line with the data file:line as a note."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vpolang.api import check_file
from vpolang.cli import app
from vpolang.datacheck import lines, scan as scan_module
from vpolang.datacheck.sniff import container
from vpolang.estimate.jobs import Sizes
from vpolang.planning import build_plan

MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


@pytest.mark.parametrize("head, name", [
    (MP4, "mp4/mov"), (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "mp4/mov"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "webm/mkv (EBML)"), (b"RIFF\x10\x00\x00\x00AVI LIST", "avi"),
    (b"GIF89a\x10\x00", "gif"), (b"OggS\x00\x02", "ogg"), (b"\x47" + bytes(187) + b"\x47\x00", "mpeg-ts"),
    (b"<html>404 Not Found</html>", None), (b"\x89PNG\r\n\x1a\n", None), (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
    (b"", None)])
def test_containers_are_told_by_their_first_bytes(head, name):
    assert container(head) == name


def recipe(tmp_path, stage_body: str, decls: str = "") -> str:
    path = tmp_path / "r.vpo"
    path.write_text(f"vpo 0.1\nuse std.shapes\n{decls}\nstage rl = grpo(shapes.tiny_dit) {{\n{stage_body}\n"
                    "  reward = shapes.alignment\n  kl = 0.01\n  steps = 2\n  lr = 1e-4\n}\n")
    return str(path)


def test_a_prompt_file_is_read_only_up_to_the_cap_and_its_size_extrapolated(tmp_path, monkeypatch):
    monkeypatch.setattr(lines, "MAX_BYTES", 4096)
    data = tmp_path / "data"
    data.mkdir()
    body = "".join(f"a red circle moving left {i:05d}\n" for i in range(2000))  # 31 bytes a line
    (data / "p.txt").write_bytes(body.encode() + b"\xff\xfe broken past the cap\n")
    path = recipe(tmp_path, '  prompts = prompts("data/p.txt")')
    result, plan = build_plan(path, {}, None)
    assert result.ok and plan is not None, [d.message for d in result.diagnostics]  # bad line: past the cap
    counted = scan_module.scan_text_file("prompts", "data/p.txt", scan_module.Files(tmp_path)).count
    assert abs(counted - 2001) < 40  # extrapolated from the first 4 KiB


def test_check_and_plan_read_each_data_file_once(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "p.jsonl").write_text("".join(json.dumps({"prompt": f"p{i}"}) + "\n" for i in range(7)))
    reads = []
    real = scan_module.read_prefix
    monkeypatch.setattr(scan_module, "read_prefix", lambda p: reads.append(p) or real(p))
    path = recipe(tmp_path, "  prompts = train", decls='dataset train = prompts("data/p.jsonl")\n')
    result, plan = build_plan(path, {}, None)
    assert result.ok and plan is not None
    assert reads == [tmp_path / "data" / "p.jsonl"]
    assumed: list[str] = []
    assert Sizes(tmp_path, assumed).of(plan.job("rl").config.prompts) == 7 and assumed == []
    assert len(reads) == 1  # the planner's count came from the same reading


def test_data_that_is_not_on_this_machine_is_not_judged(tmp_path):
    path = recipe(tmp_path, '  prompts = prompts("/cluster/only/prompts.txt")',
                  decls='dataset far = videos("cluster-data/clips/*.mp4")\n'
                        'stage s = sft(shapes.tiny_dit) {\n  data = far\n  steps = 2\n  lr = 1e-4\n}\n')
    assert check_file(path).diagnostics == []


def test_a_deeply_nested_line_is_a_diagnostic_not_a_traceback(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "p.jsonl").write_text("[" * 100_000 + "\n")
    diags = check_file(recipe(tmp_path, '  prompts = prompts("data/p.jsonl")')).diagnostics
    assert [d.code for d in diags] == ["E0403"] and diags[0].notes[0].span.line == 1


def test_vpo_check_names_the_recipe_line_and_the_data_file_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "p.jsonl").write_text('{"prompt": "a red circle"}\n{"prompt": 3}\n')
    path = recipe(tmp_path, '  prompts = prompts("data/p.jsonl")')
    result = CliRunner().invoke(app, ["check", path])
    assert result.exit_code == 1
    assert f"--> {path}:5:21" in result.output
    assert f'field "prompt" must be str, got 3 ({tmp_path}/data/p.jsonl:2:1)' in result.output


def test_a_fifo_matched_by_a_glob_is_reported_not_waited_on(tmp_path):
    import os

    clips = tmp_path / "data" / "clips"
    clips.mkdir(parents=True)
    os.mkfifo(clips / "a.mp4")
    (clips / "a.txt").write_text("a red circle")
    path = tmp_path / "r.vpo"
    path.write_text('vpo 0.1\nuse std.shapes\nstage s = sft(shapes.tiny_dit) {\n  data = videos("data/clips/*.mp4")\n'
                    "  steps = 2\n  lr = 1e-4\n}\n")
    diags = check_file(path).diagnostics
    assert [d.code for d in diags] == ["E0402"] and "not a regular file" in diags[0].message
