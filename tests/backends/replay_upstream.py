"""An OpenAI-compatible upstream that answers with recorded responses, byte for byte.

Run it as ``python tests/backends/replay_upstream.py --port 8099 --trace tools_forced``.
``POST /v1/chat/completions`` answers with ``traces/<trace>.sse`` when the request streams
and ``traces/<trace>.json`` when it does not, exactly as llama-cpp-python's server sent
them when ``traces/record.py`` recorded them (``reasoning`` follows DeepSeek's documented
format). ``POST /_replay`` with ``{"trace": "..."}`` switches the trace live;
``GET /_replay`` returns the trace, the request count and the last request body, so a
test can check what the gateway sent upstream.

A bare ASGI app on uvicorn, like ``fault_upstream.py``: what the gateway reads is exactly
what is in the files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRACES = Path(__file__).resolve().parent / "traces"


@dataclass
class Replay:
    """Handle on one replaying process (for tests: ``start_replay``)."""

    proc: subprocess.Popen[bytes]
    url: str

    def play(self, trace: str) -> None:
        """Answer with ``trace`` from now on (and reset the request count)."""
        import httpx

        httpx.post(f"{self.url}/_replay", json={"trace": trace}, timeout=5).raise_for_status()

    def state(self) -> dict[str, Any]:
        import httpx

        state: dict[str, Any] = httpx.get(f"{self.url}/_replay", timeout=5).json()
        return state

    def last_body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.state()["last_body"]
        return body


def start_replay(trace: str = "tools_forced") -> Replay:
    """Start ``python replay_upstream.py`` on a free loopback port; stop it with
    ``backends.upstreams.stop(replay.proc)``."""
    from backends.upstreams import free_port, wait_http

    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--port", str(port), "--trace", trace])
    replay = Replay(proc, f"http://127.0.0.1:{port}")
    wait_http(f"{replay.url}/_replay", proc, 20)
    return replay


class ReplayUpstream:
    def __init__(self, trace: str) -> None:
        self.trace = trace
        self.requests = 0
        self.last_body: dict[str, Any] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        method, path = scope["method"], scope["path"]
        if path == "/_replay":
            if method == "POST":
                self.trace = json.loads(body)["trace"]
                self.requests, self.last_body = 0, None
            state = {"trace": self.trace, "requests": self.requests, "last_body": self.last_body}
            await _send(send, 200, "application/json", json.dumps(state).encode())
        elif path in ("/health", "/v1/models"):
            models = {"object": "list", "data": [{"id": "replay", "object": "model"}]}
            await _send(send, 200, "application/json", json.dumps(models).encode())
        elif path == "/v1/chat/completions" and method == "POST":
            self.requests += 1
            self.last_body = json.loads(body or b"{}")
            if self.last_body.get("stream"):
                raw = (TRACES / f"{self.trace}.sse").read_bytes()
                await _send(send, 200, "text/event-stream", raw)
            else:
                raw = (TRACES / f"{self.trace}.json").read_bytes()
                await _send(send, 200, "application/json", raw)
        else:
            await _send(send, 404, "application/json", b'{"detail": "Not Found"}')


async def _send(send: Any, status: int, content_type: str, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--trace", default="tools_forced")
    args = parser.parse_args()
    uvicorn.run(
        ReplayUpstream(args.trace),
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
