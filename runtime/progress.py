"""Progress for people (rich: pipeline and current job) and for logs (plain lines), or nothing (quiet)."""
from __future__ import annotations

import sys
import time

from vpolang.plan import Job

from .rundir import JobDir


class Progress:
    def __init__(self, mode: str = "auto", total: int = 0):
        if mode == "auto":
            mode = "rich" if sys.stderr.isatty() else "plain"
        self.mode = mode
        self.total = total
        self.done = 0
        self._last: dict[str, float] = {}
        self._started: dict[str, float] = {}
        self._console = None
        if mode == "rich":
            from rich.console import Console
            self._console = Console(stderr=True)

    def _print(self, text: str) -> None:
        if self.mode == "quiet":
            return
        if self._console is not None:
            self._console.print(text, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def event(self, job: Job, what: str, detail: str) -> None:
        self.done += what in ("cached",)
        self._print(f"[{self.done}/{self.total}] {job.id}: {what}{(' - ' + detail) if detail else ''}")

    def start(self, job: Job, jd: JobDir) -> None:
        self._started[job.id] = time.time()
        self._print(f"[{self.done}/{self.total}] {job.id} ({job.kind}): running")

    def tick(self, job: Job, jd: JobDir) -> None:
        now = time.time()
        if now - self._last.get(job.id, 0) < (2 if self.mode == "rich" else 10):
            return
        self._last[job.id] = now
        m = jd.last_metrics()
        if not m:
            return
        total = job.config.get("steps") or 0
        step = int(m.get("step", 0))
        elapsed = now - self._started.get(job.id, now)
        eta = f", eta {elapsed / step * (total - step):.0f}s" if total and step else ""
        shown = ", ".join(f"{k} {v:.4g}" for k, v in m.items() if k not in ("step", "time") and isinstance(v, float))
        self._print(f"    {job.id}: step {step}{'/' + str(total) if total else ''}{eta}  {shown}")

    def finish(self, job: Job, jd: JobDir) -> None:
        self.done += 1
        took = time.time() - self._started.get(job.id, time.time())
        self._print(f"[{self.done}/{self.total}] {job.id}: done in {took:.0f}s")

    def fail(self, job: Job, message: str, jd: JobDir) -> None:
        self._print(f"[{self.done}/{self.total}] {job.id}: FAILED - {message}\n    log: {jd.log_path}")
