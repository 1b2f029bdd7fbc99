"""Experiment trackers: TensorBoard and Weights & Biases, behind one small interface.

A job's tracker is fed by the same stream the report reads: every record `JobContext.metrics` appends
to metrics.jsonl is also handed, as is, to each sink the job's placement names (`track` on the recipe's
cluster, or `vpo run --track`); beside the scalars, a trainer may hand over a histogram (GRPO's
advantages) and a video (validation samples). Neither package is required unless chosen: a chosen one
that is missing stops the run before it starts, naming the extra to install.

Layout: every job of a run is one run of one group, named by the plan's job id:
  TensorBoard: <run dir>/tensorboard/<job id>/<hash[:8]>/   (`tensorboard --logdir <run dir>/tensorboard`)
  wandb:       <run dir>/wandb/  (group: the run directory's name; run name: the job id;
               run id: <job id>-<hash[:8]>, so a resumed attempt continues the same run)
wandb runs offline unless the user configured it (`WANDB_MODE`, or `WANDB_API_KEY` for online).

A resumed job re-logs the steps between its last checkpoint and where it stopped; those steps are in
metrics.jsonl already (the bitwise-resumed values are the same), and the tracker skips every step up to
the last one the stream held when the attempt began, so a curve continues without duplicates."""
from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path
from typing import Any, Callable, Protocol

TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb"}  # tracker -> the module it needs


class Sink(Protocol):
    def scalars(self, step: int, values: dict[str, float]) -> None: ...
    def histogram(self, step: int, name: str, values: Any) -> None: ...
    def video(self, step: int, name: str, gif: bytes, shape: tuple[int, int]) -> None: ...
    def close(self) -> None: ...


def missing(names: list[str]) -> str | None:
    """A one-line diagnostic when a chosen tracker's package is not installed, else None."""
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        return f"unknown tracker {', '.join(map(repr, unknown))}; choose from {', '.join(TRACKERS)}"
    absent = [n for n in names if importlib.util.find_spec(TRACKERS[n]) is None]
    if absent:
        return (f"tracking with {' and '.join(absent)} needs {'its package' if len(absent) == 1 else 'their packages'}"
                f": pip install 'vpo[track]' (or remove `track` / `--track`)")
    return None


class TensorBoardSink:
    def __init__(self, folder: Path, job_id: str, hash_: str):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder / "tensorboard" / job_id / hash_[:8]), flush_secs=30)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()  # a killed job loses no step the stream already holds

    def histogram(self, step: int, name: str, values: Any) -> None:
        self.writer.add_histogram(name, values, step)

    def video(self, step: int, name: str, gif: bytes, shape: tuple[int, int]) -> None:
        """An animated GIF as an image summary: TensorBoard's image dashboard plays it (add_video would
        need moviepy for the same result)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        image = Summary.Image(height=shape[0], width=shape[1], colorspace=3, encoded_image_string=gif)
        self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=name, image=image)]), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    def __init__(self, folder: Path, job_id: str, hash_: str, project: str, config: dict[str, Any]):
        import os

        import wandb

        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        run_id = re.sub(r"[^A-Za-z0-9_-]", "-", f"{job_id}-{hash_[:8]}")
        self.wandb = wandb
        self.run = wandb.init(mode=mode, dir=str(folder), project=project, group=folder.resolve().name,
                              name=job_id, id=run_id, resume="allow", config=config, reinit="create_new",
                              settings=wandb.Settings(console="off", x_disable_stats=True, disable_git=True,
                                                      save_code=False, silent=True))
        self.staged: dict[str, Any] = {}  # histograms and videos go out with their step's scalars

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log({**values, **self.staged}, step=step)
        self.staged = {}

    def histogram(self, step: int, name: str, values: Any) -> None:
        self.staged[name] = self.wandb.Histogram(values.detach().cpu().float().numpy()
                                                 if hasattr(values, "detach") else values)

    def video(self, step: int, name: str, gif: bytes, shape: tuple[int, int]) -> None:
        self.staged[name] = self.wandb.Video(io.BytesIO(gif), format="gif")

    def close(self) -> None:
        if self.staged:
            self.run.log(self.staged)
        self.run.finish()


class Trackers:
    """The sinks of one job (main rank only), opened at the first record. Steps up to `skip_through`
    (the stream's last step when this attempt began) were tracked by an earlier attempt.

    A tracker never stops training: a sink that fails (wandb online without a network, a full disk
    under the event files) is reported once through `warn` and dropped; metrics.jsonl, the report's
    source, is written before any sink sees a record."""

    def __init__(self, names: list[str], run_root: Path, job_id: str, hash_: str, project: str,
                 config: dict[str, Any], skip_through: int, warn: Callable[[str], None] = print):
        self.names, self.run_root, self.job_id, self.hash = list(names), run_root, job_id, hash_
        self.project, self.config, self.skip_through, self.warn = project, config, skip_through, warn
        self.sinks: dict[str, Sink] | None = None

    def _open(self) -> dict[str, Sink]:
        if self.sinks is None:
            self.sinks = {}
            for name in self.names:
                try:
                    if name == "tensorboard":
                        self.sinks[name] = TensorBoardSink(self.run_root, self.job_id, self.hash)
                    elif name == "wandb":
                        self.sinks[name] = WandbSink(self.run_root, self.job_id, self.hash, self.project, self.config)
                except Exception as exc:  # noqa: BLE001 - see the class docstring
                    self._failed(name, exc)
        return self.sinks

    def _each(self, call: Callable[[Sink], None]) -> None:
        for name, sink in list(self._open().items()):
            try:
                call(sink)
            except Exception as exc:  # noqa: BLE001 - see the class docstring
                self.sinks.pop(name, None)
                self._failed(name, exc)

    def _failed(self, name: str, exc: Exception) -> None:
        self.warn(f"tracker {name} stopped: {type(exc).__name__}: {exc}; training goes on (metrics.jsonl "
                  "has every record)")

    def record(self, record: dict[str, Any]) -> None:
        step = int(record["step"])
        if step <= self.skip_through:
            return
        values = {k: float(v) for k, v in record.items() if k not in ("step", "time") and v is not None}
        self._each(lambda sink: sink.scalars(step, values))

    def histogram(self, step: int, name: str, values: Any) -> None:
        if step > self.skip_through:
            self._each(lambda sink: sink.histogram(step, name, values))

    def video(self, step: int, name: str, video: Any, fps: int = 8, scale: int = 4) -> None:
        """`video`: (F, 3, H, W) in [-1, 1], or a grid of them (N, F, 3, H, W)."""
        if step <= self.skip_through or not self.names:
            return
        gif, shape = gif_bytes(video, fps, scale)
        self._each(lambda sink: sink.video(step, name, gif, shape))

    def close(self) -> None:
        for name, sink in (self.sinks or {}).items():
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - see the class docstring
                self._failed(name, exc)
        self.sinks = None


def gif_bytes(video: Any, fps: int, scale: int) -> tuple[bytes, tuple[int, int]]:
    from PIL import Image

    from runtime.data.gif import grid
    from runtime.data.video import to_uint8

    if video.dim() == 5:
        video = grid(video)
    frames = [Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST)
              for img in to_uint8(video)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=max(20, round(1000 / fps)), optimize=False, disposal=1)
    return out.getvalue(), (frames[0].height, frames[0].width)
