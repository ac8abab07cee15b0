"""The load generator: closed-loop clients against one target, and what they measured.

One keep-alive connection per simulated user (one shared httpx pool became the bottleneck
at 32 connections); each user sends its next request as soon as the previous one is read to
its last byte (``[DONE]`` for streams). Warm-up rounds are not counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

CHAT_PATH = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark."}]
# Sent to every target: LiteLLM's master key (joulegate on loopback and the upstream ignore it).
AUTH = {"authorization": "Bearer sk-bench-0123456789abcdef0123456789abcdef"}


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; ``p`` in [0, 100]."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))
    return s[k]


@dataclass
class LoadResult:
    """One closed-loop run: ``concurrency`` clients, each sending as soon as it is answered."""

    target: str
    stream: bool
    concurrency: int
    elapsed_s: float
    latencies_ms: list[float]
    ttft_ms: list[float]
    errors: int
    first_error: str | None = None
    # CPU seconds the serving process used during the run (set by the caller): a measure
    # of work per request that waiting for a busy CPU does not inflate, unlike latency.
    server_cpu_s: float | None = None

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "stream": self.stream,
            "concurrency": self.concurrency,
            "requests": self.ok,
            "errors": self.errors,
            "first_error": self.first_error,
            "elapsed_s": round(self.elapsed_s, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p(50), 3),
            "p95_ms": round(self.p(95), 3),
            "p99_ms": round(self.p(99), 3),
            "mean_ms": round(sum(self.latencies_ms) / max(1, self.ok), 3),
            "ttft_p50_ms": round(percentile(self.ttft_ms, 50), 3) if self.ttft_ms else None,
            "server_cpu_ms_per_request": round(self.server_cpu_s * 1000 / self.ok, 3)
            if self.server_cpu_s is not None and self.ok
            else None,
        }


def chat_body(model: str, stream: bool, max_tokens: int = 16) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": MESSAGES, "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


async def _one(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], stream: bool
) -> tuple[float, float | None]:
    """One request, read to its last byte; (latency ms, time-to-first-byte ms)."""
    t0 = time.perf_counter()
    if not stream:
        resp = await client.post(url, json=body)
        if resp.status_code != 200:
            raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:300]}")
        return (time.perf_counter() - t0) * 1000, None
    ttfb: float | None = None
    tail = b""
    async with client.stream("POST", url, json=body) as resp:
        if resp.status_code != 200:
            await resp.aread()
            raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:300]}")
        async for chunk in resp.aiter_raw():
            if ttfb is None:
                ttfb = (time.perf_counter() - t0) * 1000
            tail = (tail + chunk)[-64:]
    if b"[DONE]" not in tail:
        raise RuntimeError(f"stream ended without [DONE]: {tail!r}")
    return (time.perf_counter() - t0) * 1000, ttfb


async def run_load(
    target: str,
    base_url: str,
    model: str,
    *,
    stream: bool,
    concurrency: int,
    duration_s: float,
    max_requests: int | None = None,
    warmup: int = 2,
) -> LoadResult:
    """Closed loop for ``duration_s`` (or ``max_requests``), after ``warmup`` rounds per client."""
    url = base_url + CHAT_PATH
    body = chat_body(model, stream)
    latencies: list[float] = []
    ttfts: list[float] = []
    errors = 0
    first_error: str | None = None
    sent = 0
    # One client (one keep-alive connection) per simulated user: a single shared httpx
    # pool gets slow with many connections and would make the load generator the bottleneck.
    clients = [
        httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=60, headers=AUTH)
        for _ in range(concurrency)
    ]
    try:
        # Warm-up: open every connection and let both ends settle; not counted.
        for _ in range(warmup):
            await asyncio.gather(
                *(_one(c, url, body, stream) for c in clients), return_exceptions=True
            )
        deadline = time.perf_counter() + duration_s

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal errors, first_error, sent
            while time.perf_counter() < deadline:
                if max_requests is not None and sent >= max_requests:
                    return
                sent += 1
                try:
                    ms, ttfb = await _one(client, url, body, stream)
                except Exception as exc:
                    errors += 1
                    first_error = first_error or f"{type(exc).__name__}: {exc}"[:300]
                    continue
                latencies.append(ms)
                if ttfb is not None:
                    ttfts.append(ttfb)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        elapsed = time.perf_counter() - t0
    finally:
        for c in clients:
            await c.aclose()
    return LoadResult(target, stream, concurrency, elapsed, latencies, ttfts, errors, first_error)


def load(**kwargs: Any) -> LoadResult:
    """``run_load`` on a fresh event loop (uvloop when installed, as the servers use)."""
    try:
        import uvloop

        return uvloop.run(run_load(**kwargs))
    except ImportError:
        return asyncio.run(run_load(**kwargs))
