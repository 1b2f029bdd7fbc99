"""A GRPO stage trains against a reward served over HTTP on loopback (a real scorer: mean brightness of
the PNG frames it is sent); the server dying mid-run stops the job with an error naming the reward, its
URL and the stage's recipe line, and keeps the checkpoints; a rerun with the server back resumes from
the last checkpoint instead of starting over."""
from __future__ import annotations

import socket

import pytest

from tests.rewards.test_served import Server, brightness

from .conftest import status, vpo

RECIPE = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }
reward served = remote { url = "URL/score", timeout = 20s, retries = 1, frames = 2 }

stage rl = grpo(tiny) {
  prompts          = shapes.prompts(n = 4)
  group_size       = 2
  batch            = 2
  steps            = 3
  lr               = 1e-4
  kl               = 0.01
  reward           = served
  checkpoint_every = 1
}
"""


def scorer_until(alive: int):
    """Answers `alive` requests with real scores, then drops every connection and shuts itself down."""
    def behaviour(n, body):
        if n > alive:
            raise ConnectionAbortedError("the scorer went away")
        return 200, {"scores": [brightness(v["frames"]) for v in body["videos"]]}
    return behaviour


class DyingServer(Server):
    """On the first request past `alive`, stops listening and cuts that request: a killed server."""

    def __init__(self, alive: int, port: int = 0):
        super().__init__(scorer_until(alive), port)
        handler, httpd = self.httpd.RequestHandlerClass, self.httpd
        original = handler.do_POST

        def do_post(h):
            try:
                original(h)
            except ConnectionAbortedError:
                h.close_connection = True
                httpd.socket.close()
                h.connection.shutdown(socket.SHUT_RDWR)
        handler.do_POST = do_post


@pytest.mark.slow  # two job processes of the real GRPO trainer (~15 s each on 2 cores)
def test_grpo_trains_against_a_served_reward_and_survives_the_server_dying(tmp_path):
    with DyingServer(alive=2) as first:
        port = int(first.url.rsplit(":", 1)[1])
        recipe = tmp_path / "served.vpo"
        recipe.write_text(RECIPE.replace("URL", first.url))
        out = vpo("run", recipe, "--run-dir", tmp_path / "run", "--progress", "plain", check=False, cwd=tmp_path)
        answered = len(first.requests)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    failed = status(tmp_path / "run", "rl")
    assert failed["state"] == "failed"
    for text in ("reward `served`", f"{first.url}/score", "is the server running?", "served.vpo:7"):
        assert text in failed["error"] or text in out.stderr, (text, failed["error"], out.stderr)
    assert answered >= 3  # two answered, then the dropped one (and its retry)
    checkpoints = sorted(p.name for p in (tmp_path / "run").rglob("step-*") if p.is_dir())
    assert checkpoints, "no checkpoint survived the failure"

    with DyingServer(alive=100, port=port) as second:
        out = vpo("run", recipe, "--run-dir", tmp_path / "run", "--progress", "plain", check=False, cwd=tmp_path)
        resumed_requests = len(second.requests)
    assert out.returncode == 0, out.stderr
    assert status(tmp_path / "run", "rl")["state"] == "done"
    assert 0 < resumed_requests < 3  # resumed after the checkpointed steps, not from step 0
