"""Rewards served elsewhere: `remote` (vpo's HTTP JSON scoring protocol) and `served_judge` (a VLM behind
an OpenAI-compatible chat API such as vLLM or SGLang).

Both send each video as `frames` evenly spaced frames, PNG-encoded (lossless, written here with zlib:
no imaging library) and base64'd; batches of `batch` videos go out as separate requests, at most
`concurrency` in flight. A request that cannot connect, times out, or gets 429/5xx is retried `retries`
times with exponential backoff; any other failure, and the last retry's, stop the job with a JobError
naming the reward, the URL and what the server said. The URL was checked by the compiler (scheme, host,
no credentials) and is only ever given to urllib.
"""
from __future__ import annotations

import base64
import http.client
import json
import math
import os
import socket
import struct
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import torch

from runtime.errors import JobError

from .base import DeviceNeeds, Reward
from .pixels import sample_frames

RETRY_STATUS = {429, 500, 502, 503, 504}
BACKOFF_S, BACKOFF_MAX_S = 0.25, 8.0


# ---- frames ----------------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(frame: torch.Tensor) -> bytes:
    """(3, H, W) in [-1, 1] -> an 8-bit RGB PNG (each row filter 0)."""
    rgb = ((frame.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    h, w = rgb.shape[1:]
    rows = rgb.permute(1, 2, 0).reshape(h, w * 3)
    raw = torch.cat([torch.zeros(h, 1, dtype=torch.uint8), rows], dim=1).numpy().tobytes()
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")


def frames_b64(video: torch.Tensor, frames: int) -> list[str]:
    """(F, 3, H, W) -> `frames` evenly spaced frames as base64 PNG strings."""
    picked = sample_frames(video[None], frames)[0]
    return [base64.b64encode(png(f)).decode("ascii") for f in picked]


# ---- HTTP ------------------------------------------------------------------------------------------
class Client:
    """POSTs JSON with timeouts, retries and a bearer token from the environment."""

    def __init__(self, name: str, url: str, timeout: float, retries: int, api_key_env: str | None):
        self.name, self.url, self.timeout, self.retries = name, url, timeout, retries
        self.api_key_env = api_key_env

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise JobError(f"reward `{self.name}`: the environment variable {self.api_key_env} (its api_key_env) "
                               "is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def post(self, url: str, payload: dict) -> dict:
        body, headers = json.dumps(payload).encode(), self._headers()
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (attempt - 1)))
            try:
                request = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - checked URL
                    text = response.read().decode("utf-8", "replace")
                try:
                    return json.loads(text)
                except json.JSONDecodeError:
                    raise JobError(f"reward `{self.name}`: {url} answered with text that is not JSON: "
                                   f"{text[:200]!r}") from None
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", "replace")[:300]
                last = f"HTTP {e.code} {e.reason}: {detail}"
                if e.code not in RETRY_STATUS:
                    raise JobError(f"reward `{self.name}`: {url} refused the request ({last})") from None
            except (TimeoutError, socket.timeout):
                last = f"no answer within {self.timeout:g} s (its `timeout`)"
            except urllib.error.URLError as e:
                reason = e.reason
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    last = f"no answer within {self.timeout:g} s (its `timeout`)"
                else:
                    last = f"cannot connect ({reason}); is the server running?"
            except (ConnectionError, OSError, http.client.HTTPException) as e:
                last = f"the connection failed ({type(e).__name__}: {e}); is the server running?"
        raise JobError(f"reward `{self.name}`: {url} failed {self.retries + 1} time(s): {last}")


def _batched_map(fn, items: list, size: int, concurrency: int) -> list:
    """fn over consecutive chunks of `size`, `concurrency` at a time; results concatenated in order."""
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    if concurrency <= 1 or len(chunks) <= 1:
        parts = [fn(c) for c in chunks]
    else:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(chunks))) as pool:
            parts = list(pool.map(fn, chunks))
    return [x for part in parts for x in part]


def _finite(name: str, values, count: int, what: str) -> list[float]:
    if not isinstance(values, list) or len(values) != count:
        got = len(values) if isinstance(values, list) else type(values).__name__
        raise JobError(f"reward `{name}`: the server gave {got} {what} for {count} videos")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise JobError(f"reward `{name}`: the server gave a score that is not a finite number: {v!r}")
        out.append(float(v))
    return out


# ---- remote ----------------------------------------------------------------------------------------
class RemoteReward(Reward):
    """`remote { url, heads, frames, batch, concurrency, timeout, retries, api_key_env }`."""

    def __init__(self, spec: dict, name: str):
        self.name, self.spec = name, spec
        self.declared = list(spec.get("heads") or [])
        self.heads = tuple(self.declared) or (name,)
        self.bounded = bool(spec["bounded"])
        self.needs = DeviceNeeds(device="cpu", memory_gib=0.0, max_batch=None)
        self.client = Client(name, spec["url"], spec["timeout"], spec["retries"], spec.get("api_key_env"))

    def _request(self, items: list[tuple[torch.Tensor, str]]) -> list[dict[str, float]]:
        payload = {"prompts": [p for _, p in items],
                   "videos": [{"frames": frames_b64(v, self.spec["frames"]), "fps": None} for v, _ in items],
                   "heads": self.declared}
        answer = self.client.post(self.spec["url"], payload)
        scores = answer.get("scores") if isinstance(answer, dict) else None
        if scores is None:
            raise JobError(f"reward `{self.name}`: the answer from {self.spec['url']} has no `scores`: "
                           f"{json.dumps(answer)[:200]}")
        if not self.declared:
            if isinstance(scores, dict):
                raise JobError(f"reward `{self.name}`: the server gave named scores {sorted(scores)}; declare them "
                               "with `heads = [...]`")
            return [{self.name: s} for s in _finite(self.name, scores, len(items), "scores")]
        if not isinstance(scores, dict) or set(self.declared) - set(scores):
            missing = sorted(set(self.declared) - set(scores)) if isinstance(scores, dict) else self.declared
            raise JobError(f"reward `{self.name}`: the server gave no scores for heads {missing}")
        per_head = {h: _finite(self.name, scores[h], len(items), f"`{h}` scores") for h in self.declared}
        return [{h: per_head[h][i] for h in self.declared} for i in range(len(items))]

    def score(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        rows = _batched_map(self._request, list(zip(videos, prompts)), self.spec["batch"], self.spec["concurrency"])
        return {h: torch.tensor([r[h] for r in rows], dtype=torch.float32) for h in self.heads}


# ---- OpenAI-compatible judge -----------------------------------------------------------------------
YES, NO = "yes", "no"


def chat_url(base: str) -> str:
    """A server's base URL (`http://host:8000` or `.../v1`) or the full chat-completions URL."""
    base = base.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


def yes_probability(top: list[dict]) -> float | None:
    """P(yes) / (P(yes) + P(no)) from a first token's top log-probabilities, spellings folded
    (" Yes", "YES", "yes." all count as yes); None when neither word is among them."""
    mass = {YES: 0.0, NO: 0.0}
    for entry in top:
        word = str(entry.get("token", "")).strip().strip(".!,").lower()
        if word in mass:
            mass[word] += math.exp(float(entry["logprob"]))
    total = mass[YES] + mass[NO]
    return mass[YES] / total if total > 0 else None


class ServedJudgeReward(Reward):
    """`served_judge { url, model, question, frames, concurrency, timeout, retries, top_logprobs }`."""

    def __init__(self, spec: dict, name: str):
        self.name, self.spec, self.heads = name, spec, (name,)
        self.needs = DeviceNeeds(device="cpu", memory_gib=0.0, max_batch=None)
        self.url = chat_url(spec["url"])
        self.client = Client(name, self.url, spec["timeout"], spec["retries"], spec.get("api_key_env"))

    def messages(self, video: torch.Tensor, prompt: str) -> list[dict]:
        images = [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b}"}}
                  for b in frames_b64(video, self.spec["frames"])]
        text = (f"These are {len(images)} frames of a video generated from the prompt: \"{prompt}\".\n"
                f"{self.spec['question']} Answer yes or no.")
        return [{"role": "user", "content": [*images, {"type": "text", "text": text}]}]

    def _one(self, item: tuple[torch.Tensor, str]) -> float:
        video, prompt = item
        payload = {"model": self.spec["model"], "messages": self.messages(video, prompt), "max_tokens": 1,
                   "temperature": 0.0, "logprobs": True, "top_logprobs": self.spec["top_logprobs"]}
        answer = self.client.post(self.url, payload)
        try:
            choice = answer["choices"][0]
        except (KeyError, IndexError, TypeError):
            raise JobError(f"reward `{self.name}`: {self.url} gave no choices: {json.dumps(answer)[:200]}") from None
        content = (choice.get("logprobs") or {}).get("content") or []
        if content and content[0].get("top_logprobs"):
            p = yes_probability(content[0]["top_logprobs"])
            if p is not None:
                return p
        text = str((choice.get("message") or {}).get("content") or "").strip().strip(".!,").lower()
        if text in (YES, NO):
            return 1.0 if text == YES else 0.0
        raise JobError(f"reward `{self.name}`: the judge answered {text[:80]!r} with no yes/no log-probabilities; "
                       "serve it with log-probabilities enabled (vLLM: --max-logprobs >= top_logprobs)")

    def score(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        items = list(zip(videos, prompts))  # one chat request per video, `concurrency` in flight
        values = _batched_map(lambda chunk: [self._one(x) for x in chunk], items, 1, self.spec["concurrency"])
        return {self.name: torch.tensor(values, dtype=torch.float32)}
