"""Served rewards against real HTTP servers on loopback (http.server in a thread): vpo's `remote` JSON
protocol with a real scorer (mean brightness of the decoded PNG frames), batching, concurrency, retries,
timeouts and error messages; and `served_judge` against an OpenAI-compatible chat endpoint."""
from __future__ import annotations

import base64
import json
import math
import socket
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from runtime.errors import JobError
from runtime.rewards import registry
from runtime.rewards.served import chat_url, png, yes_probability

from .conftest import noise_video, square_video


def decode_png(data: bytes) -> torch.Tensor:
    """The test's own reader of 8-bit RGB PNGs with filter-0 rows -> (H, W, 3) uint8."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h = size
    raw = torch.frombuffer(bytearray(zlib.decompress(idat)), dtype=torch.uint8).view(h, 1 + 3 * w)
    assert bool((raw[:, 0] == 0).all())
    return raw[:, 1:].reshape(h, w, 3)


def brightness(frames_b64: list[str]) -> float:
    return float(torch.stack([decode_png(base64.b64decode(f)).float() for f in frames_b64]).mean() / 255)


class Server:
    """A scoring server on 127.0.0.1; `behaviour(handler, body) -> (status, json)` answers each POST."""

    def __init__(self, behaviour, port: int = 0):
        self.requests, self.behaviour, self.headers = [], behaviour, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                status, answer = outer.behaviour(len(outer.requests), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def scorer(n, body):
    return 200, {"scores": {"bright": [brightness(v["frames"]) for v in body["videos"]],
                            "words": [float(len(p.split())) for p in body["prompts"]]}}


def _ref(kind, **spec):
    defaults = {"remote": {"heads": [], "frames": 4, "batch": 8, "concurrency": 1, "timeout": 5.0, "retries": 0,
                           "api_key_env": None, "bounded": False},
                "served_judge": {"model": "judge", "question": "Is it bright?", "frames": 3, "concurrency": 1,
                                 "timeout": 5.0, "retries": 0, "api_key_env": None, "top_logprobs": 5}}[kind]
    return {"ref": "reward", "name": "served", "head": None, "heads": spec.get("heads") or None,
            "spec": {"kind": kind, **defaults, **spec}}


def _videos(n=5):
    return torch.stack([square_video(frames=6, size=12, background=-0.9 + 0.3 * i) if i % 2 else
                        noise_video(frames=6, size=12, seed=i) for i in range(n)])


def _expected_brightness(videos, frames):
    from runtime.rewards.pixels import sample_frames

    picked = sample_frames(videos, frames)
    return ((picked.clamp(-1, 1) + 1) * 127.5).round().mean(dim=(1, 2, 3, 4)) / 255


def test_png_round_trips_through_the_tests_own_decoder():
    frame = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0)) * 2 - 1
    decoded = decode_png(png(frame))
    assert torch.equal(decoded.permute(2, 0, 1), ((frame + 1) * 127.5).round().to(torch.uint8))


def test_remote_scores_every_head_in_batches_with_concurrency():
    prompts = ["a b", "c", "d e f", "g", "h i"]
    with Server(scorer) as server:
        reward = registry.build_reward(_ref("remote", url=server.url + "/score", heads=["bright", "words"],
                                            batch=2, concurrency=2))
        scores = reward(_videos(), prompts)
    assert len(server.requests) == 3 and sorted(len(r["prompts"]) for r in server.requests) == [1, 2, 2]
    assert all(len(v["frames"]) == 4 and r["heads"] == ["bright", "words"]
               for r in server.requests for v in r["videos"])
    assert torch.allclose(scores["bright"], _expected_brightness(_videos(), 4), atol=1e-6)
    assert scores["words"].tolist() == [2.0, 1.0, 3.0, 1.0, 2.0]
    assert torch.allclose(scores["overall"], scores["bright"] + scores["words"])


def test_remote_single_score_and_a_5xx_is_retried():
    def flaky(n, body):
        if n == 1:
            return 503, {"error": "warming up"}
        return 200, {"scores": [brightness(v["frames"]) for v in body["videos"]]}

    with Server(flaky) as server:
        reward = registry.build_reward(_ref("remote", url=server.url, retries=1))
        scores = reward(_videos(2), ["p", "q"])
    assert len(server.requests) == 2 and list(scores) == ["served"]
    assert torch.allclose(scores["served"], _expected_brightness(_videos(2), 4), atol=1e-6)


def test_remote_errors_name_the_reward_url_and_cause():
    with Server(lambda n, body: (400, {"error": "prompts too long"})) as server:
        with pytest.raises(JobError, match=r"reward `served`: .* refused the request \(HTTP 400.*prompts too long"):
            registry.build_reward(_ref("remote", url=server.url, retries=3))(_videos(1), ["p"])
        assert len(server.requests) == 1  # a 4xx is not retried
    registry.clear_cache()
    with Server(lambda n, body: (200, {"scores": [1.0, float("nan")][:len(body["videos"])]})) as server:
        with pytest.raises(JobError, match="gave 1 scores for 2 videos|not a finite number"):
            registry.build_reward(_ref("remote", url=server.url))(_videos(2)[:1].expand(2, -1, -1, -1, -1), ["p", "q"])
    registry.clear_cache()
    with Server(lambda n, body: (200, {"scores": {"other": [1.0]}})) as server:
        with pytest.raises(JobError, match="declare them with `heads"):
            registry.build_reward(_ref("remote", url=server.url))(_videos(1), ["p"])


def test_remote_server_down_and_timeout_fail_after_the_retries():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(JobError, match=r"failed 3 time\(s\): cannot connect .*is the server running\?"):
        registry.build_reward(_ref("remote", url=f"http://127.0.0.1:{port}/score", retries=2))(_videos(1), ["p"])
    assert time.monotonic() - started >= 0.25 + 0.5  # backoff between tries
    registry.clear_cache()

    def slow(n, body):
        time.sleep(1.0)
        return 200, {"scores": [0.0]}

    with Server(slow) as server:
        with pytest.raises(JobError, match=r"failed 2 time\(s\): no answer within 0.3 s"):
            registry.build_reward(_ref("remote", url=server.url, timeout=0.3, retries=1))(_videos(1), ["p"])


def judge_server(n, body):
    """An OpenAI-compatible endpoint whose 'model' says yes in proportion to the frames' brightness."""
    images = [part["image_url"]["url"] for part in body["messages"][0]["content"] if part["type"] == "image_url"]
    p = brightness([u.removeprefix("data:image/png;base64,") for u in images])
    top = [{"token": " Yes", "logprob": math.log(p * 0.9)}, {"token": "no", "logprob": math.log((1 - p) * 0.9)},
           {"token": "maybe", "logprob": math.log(0.1)}]
    return 200, {"id": "x", "object": "chat.completion", "model": body["model"],
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes"},
                              "logprobs": {"content": [{"token": " Yes", "logprob": top[0]["logprob"],
                                                        "top_logprobs": top}]}}]}


def test_served_judge_reads_p_yes_from_an_openai_compatible_server(monkeypatch):
    monkeypatch.setenv("VPO_TEST_JUDGE_KEY", "s3cret")
    with Server(judge_server) as server:
        reward = registry.build_reward(_ref("served_judge", url=server.url + "/v1", concurrency=2,
                                            api_key_env="VPO_TEST_JUDGE_KEY"))
        scores = reward(_videos(3), ["bright", "dark", "grey"])["served"]
    assert len(server.requests) == 3
    first = server.requests[0]
    assert first["model"] == "judge" and first["max_tokens"] == 1 and first["logprobs"] is True
    parts = first["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 3 + ["text"] and "Is it bright?" in parts[-1]["text"]
    assert all(h["Authorization"] == "Bearer s3cret" for h in server.headers)
    assert torch.allclose(scores, _expected_brightness(_videos(3), 3), atol=1e-5)


def test_served_judge_without_logprobs_reads_the_answer_word():
    def plain(n, body):
        return 200, {"choices": [{"message": {"content": "No."}}]}

    with Server(plain) as server:
        assert registry.build_reward(_ref("served_judge", url=server.url))(_videos(1), ["p"])["served"].item() == 0.0


def test_helpers():
    assert chat_url("http://h:8000") == "http://h:8000/v1/chat/completions"
    assert chat_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert chat_url("http://h/x/chat/completions") == "http://h/x/chat/completions"
    assert yes_probability([{"token": "YES", "logprob": math.log(0.3)}, {"token": " no.", "logprob": math.log(0.1)}]) \
        == pytest.approx(0.75)
    assert yes_probability([{"token": "maybe", "logprob": 0.0}]) is None
