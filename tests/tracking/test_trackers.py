"""Trackers and in-training validation on real runs: a shapes SFT stage whose lr makes it collapse
validates every step, stops early and keeps its best weights, and logs to TensorBoard and wandb (read
back with TensorBoard's own reader and from wandb's offline run file); a job killed and resumed
continues its TensorBoard curves without a duplicate step."""
from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from vpolang.plan import save_plan

from ..runtime.conftest import ROOT, env, job_dir, toy_job, toy_plan, vpo

pytest.importorskip("tensorboard")
pytest.importorskip("wandb")

# lr = 1 with a loose clip diverges at once (loss 2 -> 4e4); the temporal flicker of the untrained
# model's nearly still samples is already at its best, so validation sees no improvement after step 1
COLLAPSE = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }
reward steady = weight_free { metric = temporal_flicker, resize = 16 }

stage s = sft(tiny) {
  data             = shapes.videos(n = 16, seed = 0)
  steps            = 12
  batch            = 4
  lr               = 1
  grad_clip        = 100
  checkpoint_every = 1
  with validate { every = 1, prompts = shapes.prompts(n = 4, split = test), metrics = [steady, shapes.alignment],
                  patience = 2, keep_best = true }
}
"""


def event_accumulator(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "histograms": 0})
    acc.Reload()
    return acc


def wandb_records(path: Path):
    """The records of a wandb run file (`wandb sync` uploads these): a LevelDB-style log of protobuf
    Records after a 7-byte header, in 32 KiB blocks."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending += chunk
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


@pytest.fixture(scope="module")
def collapsed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("collapse")
    recipe = folder / "collapse.vpo"
    recipe.write_text(COLLAPSE)
    out = vpo("run", recipe, "--run-dir", folder / "run", "--progress", "plain", "--track", "tensorboard",
              "--track", "wandb", WANDB_SILENT="true")
    return folder / "run", out


def test_validation_stops_a_collapsing_stage_early_and_keeps_its_best(collapsed):
    import torch
    from safetensors.torch import load_file

    run, out = collapsed
    job = job_dir(run, "s")
    records = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
    vals = [(r["step"], r["val/steady"]) for r in records if "val/steady" in r]
    assert all("val/alignment" in r for r in records)  # every step validated, every metric logged
    best_step, best = max(vals, key=lambda sv: (sv[1], -sv[0]))
    stopped = records[-1]["step"]
    assert stopped == best_step + 2 < 12, vals  # patience 2: two validations without improvement
    assert records[1]["loss"] > 100 * records[0]["loss"]  # it did collapse
    assert "stopped early at step" in out.stderr
    status = json.loads((job / "status.json").read_text())
    assert status["state"] == "done"
    # the output is the best validation's weights, not the last step's
    output = load_file(str(job / "artifacts" / "policy" / "weights.safetensors"))
    kept = torch.load(job / "validation_best.pt", weights_only=True)
    assert kept["step"] == best_step
    for name, tensor in kept["model"].items():
        assert torch.equal(output[name], tensor.to(output[name].dtype)), name
    checkpoints = {int(p.name.split("-")[1]): p / "state.pt" for p in (job / "checkpoints").glob("step-*")}
    later = torch.load(checkpoints[max(checkpoints)], weights_only=False)["model"]  # the collapse went on
    assert max(checkpoints) > best_step and any(not torch.equal(output[k], v.to(output[k].dtype))
                                                for k, v in later.items())


def test_tensorboard_event_files_read_back(collapsed):
    run, _ = collapsed
    (folder,) = (run / "tensorboard" / "s").iterdir()  # one run per job, named by the plan's job id
    acc = event_accumulator(folder)
    tags = acc.Tags()
    assert {"loss", "grad_norm", "val/steady", "val/alignment"} <= set(tags["scalars"])
    records = [json.loads(line) for line in (job_dir(run, "s") / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in acc.Scalars("loss")] == [r["step"] for r in records]
    assert [round(e.value, 3) for e in acc.Scalars("val/steady")] == [round(r["val/steady"], 3) for r in records]
    images = acc.Images("val/samples")  # the validation samples, one grid per validation
    assert [i.step for i in images] == [r["step"] for r in records]
    assert images[0].encoded_image_string[:6] == b"GIF89a" and images[0].width > 0


def test_wandb_offline_run_holds_the_stream(collapsed):
    run, _ = collapsed
    (offline,) = (run / "wandb").glob("offline-run-*")
    (file,) = offline.glob("run-*.wandb")
    records = list(wandb_records(file))
    (meta,) = [r.run for r in records if r.WhichOneof("record_type") == "run"][:1]
    assert (meta.display_name, meta.run_group, meta.project) == ("s", run.name, "collapse")
    history = [{i.key or "/".join(i.nested_key): i.value_json for i in r.history.item} for r in records if r.WhichOneof("record_type") == "history"]
    steps = [int(h["_step"]) for h in history]
    logged = [json.loads(line)["step"] for line in (job_dir(run, "s") / "metrics.jsonl").read_text().splitlines()]
    assert steps == logged and all("val/steady" in h and "loss" in h for h in history)
    videos = [json.loads(h["val/samples/path"]) for h in history if json.loads(h["val/samples/_type"]) == "video-file"]
    assert len(videos) == len(history) and (offline / "files" / videos[0]).read_bytes()[:6] == b"GIF89a"
    dry = subprocess.run([sys.executable, "-m", "wandb", "sync", "--dry-run", str(offline)], capture_output=True,
                         text=True, env=env(), cwd=run, timeout=120)
    assert dry.returncode == 0 and "Would sync 1 run" in dry.stdout + dry.stderr


def test_a_killed_and_resumed_job_continues_its_curves_without_duplicates(tmp_path):
    job = toy_job("a", steps=12, checkpoint_every=4, step_sleep=0.25)  # time to kill it between checkpoints
    job.placement.track = ["tensorboard"]
    plan = toy_plan(tmp_path / "toy.vpo", [job])
    save_plan(plan, tmp_path / "plan.json")
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "runtime.main", "--plan", str(tmp_path / "plan.json"), "--job", "a",
           "--run-dir", str(run_dir)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env(toy=True), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from runtime.rundir import RunDir
    from ..runtime.test_resume import wait_for_step

    folder = RunDir(run_dir).job(plan.job("a"))
    wait_for_step(folder, 5, proc)  # past the step-4 checkpoint: the steps after it are logged again on resume
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert subprocess.run(cmd, cwd=ROOT, env=env(toy=True), capture_output=True, timeout=300).returncode == 0
    steps = [json.loads(line)["step"] for line in folder.metrics_path.read_text().splitlines()]
    assert len(steps) > len(set(steps)), steps  # the stream itself holds the re-run steps
    (tb,) = (run_dir / "tensorboard" / "a").iterdir()
    assert len(list(tb.glob("events.out.tfevents.*"))) == 2  # one file per attempt
    assert [e.step for e in event_accumulator(tb).Scalars("loss")] == list(range(1, 13))


def test_a_chosen_tracker_that_is_missing_is_a_clear_error(monkeypatch, tmp_path):
    import runtime.tracking as tracking

    real = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None if name == "wandb" else real(name))
    assert tracking.missing(["tensorboard", "wandb"]) == (
        "tracking with wandb needs its package: pip install 'vpo[track]' (or remove `track` / `--track`)")
    assert "unknown tracker 'mlflow'" in tracking.missing(["mlflow"])
    recipe = tmp_path / "r.vpo"
    recipe.write_text(COLLAPSE)
    out = vpo("run", recipe, "--run-dir", tmp_path / "run", "--track", "mlflow", check=False)
    assert out.returncode == 2 and "error: --track: unknown tracker 'mlflow'" in out.stderr
    assert not (tmp_path / "run").exists()


def test_sinks_take_histograms_and_skip_what_an_earlier_attempt_tracked(tmp_path):
    import torch

    from runtime.tracking import Trackers

    def attempt(skip_through: int, steps: range):
        trackers = Trackers(["tensorboard"], tmp_path, "rl", "ab" * 32, "recipe", {}, skip_through)
        for step in steps:
            trackers.histogram(step, "advantage", torch.linspace(-1, 1, 16) * step)
            trackers.record({"step": step, "time": 0.0, "loss": 1.0 / step})
        trackers.close()

    attempt(0, range(1, 7))
    attempt(6, range(5, 10))  # the stream held up to step 6; resumed from a step-4 checkpoint, 5 and 6 come again
    acc = event_accumulator(tmp_path / "tensorboard" / "rl" / "abababab")
    assert [e.step for e in acc.Scalars("loss")] == list(range(1, 10))
    histograms = acc.Histograms("advantage")
    assert [h.step for h in histograms] == list(range(1, 10))
    assert histograms[2].histogram_value.max == 3.0 and histograms[2].histogram_value.num == 16


def test_a_failing_sink_is_dropped_with_one_warning_and_training_goes_on(tmp_path, monkeypatch):
    import runtime.tracking as tracking

    class Broken:
        def __init__(self, *args):
            pass

        def scalars(self, step, values):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(tracking, "TensorBoardSink", Broken)
    warnings: list[str] = []
    trackers = tracking.Trackers(["tensorboard"], tmp_path, "rl", "ab" * 32, "recipe", {}, 0, warn=warnings.append)
    for step in (1, 2, 3):
        trackers.record({"step": step, "time": 0.0, "loss": 1.0})
    trackers.close()
    assert len(warnings) == 1 and "tracker tensorboard stopped: OSError" in warnings[0]
