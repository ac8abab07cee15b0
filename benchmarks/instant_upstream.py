"""A minimal OpenAI-compatible upstream that answers instantly: the zero line of the benchmarks.

A raw asyncio protocol (on uvloop when installed), not a web framework, so that the
upstream costs a few microseconds per request and never becomes the bottleneck. It speaks
just enough HTTP/1.1 for keep-alive clients (httpx, aiohttp, the OpenAI SDK):

- ``POST /v1/chat/completions`` — a fixed answer, as one JSON body or, with
  ``"stream": true``, as SSE chunks with a usage chunk (``stream_options.include_usage``)
  and ``[DONE]``;
- ``GET /health`` and ``GET /v1/models``.

Run: ``python -m benchmarks.instant_upstream --port 9100``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

MODEL = "bench-model"
ANSWER_PARTS = ["Hello", "! This", " is the", " instant", " upstream", "."]
PROMPT_TOKENS = 12
COMPLETION_TOKENS = len(ANSWER_PARTS)
_USAGE = {
    "prompt_tokens": PROMPT_TOKENS,
    "completion_tokens": COMPLETION_TOKENS,
    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
}


def _json_body(model: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-instant",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(ANSWER_PARTS)},
                    "finish_reason": "stop",
                }
            ],
            "usage": _USAGE,
        },
        separators=(",", ":"),
    ).encode()


def _sse_body(model: str, include_usage: bool) -> bytes:
    created = int(time.time())

    def chunk(delta: dict[str, object], finish: str | None, usage: object = None) -> bytes:
        obj: dict[str, object] = {
            "id": "chatcmpl-instant",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if delta is not None
            else [],
        }
        if usage is not None:
            obj["usage"] = usage
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

    parts = [chunk({"role": "assistant", "content": ""}, None)]
    parts += [chunk({"content": p}, None) for p in ANSWER_PARTS]
    parts.append(chunk({}, "stop"))
    if include_usage:
        parts.append(chunk(None, None, _USAGE))  # type: ignore[arg-type]
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


# Bodies depend only on (model, stream, include_usage): build each once, not per request.
_cache: dict[tuple[str, bool, bool], bytes] = {}


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


def _chat(body: bytes) -> bytes:
    try:
        req = json.loads(body or b"{}")
    except ValueError:
        return _response("400 Bad Request", "application/json", b'{"error":"bad json"}')
    model = str(req.get("model") or MODEL)
    stream = bool(req.get("stream"))
    opts = req.get("stream_options") or {}
    include_usage = bool(opts.get("include_usage")) if isinstance(opts, dict) else False
    key = (model, stream, include_usage)
    out = _cache.get(key)
    if out is None:
        if stream:
            out = _response("200 OK", "text/event-stream", _sse_body(model, include_usage))
        else:
            out = _response("200 OK", "application/json", _json_body(model))
        _cache[key] = out
    return out


_MODELS = _response(
    "200 OK",
    "application/json",
    json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode(),
)
_HEALTH = _response("200 OK", "application/json", b'{"status":"ok"}')
_NOT_FOUND = _response("404 Not Found", "application/json", b'{"error":"not found"}')


class _Protocol(asyncio.Protocol):
    """Keep-alive HTTP/1.1 with Content-Length bodies (what every OpenAI client sends)."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            method, _, rest = lines[0].partition(" ")
            path = rest.partition(" ")[0].split("?", 1)[0]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            assert self.transport is not None
            self.transport.write(self._route(method, path, body))

    @staticmethod
    def _route(method: str, path: str, body: bytes) -> bytes:
        if method == "POST" and path.endswith("/chat/completions"):
            return _chat(body)
        if path in ("/health", "/v1/health"):
            return _HEALTH
        if path.endswith("/models"):
            return _MODELS
        return _NOT_FOUND


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Protocol, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100)
    args = ap.parse_args()
    print(f"instant upstream on http://{args.host}:{args.port}", flush=True)
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
