"""An OpenAI-compatible upstream that fails on purpose, as a real process on loopback.

Run it as ``python tests/backends/fault_upstream.py --port 8099 --mode 500``. It serves
``POST /v1/chat/completions`` (streaming or not), ``GET /health``, ``GET /v1/models``,
and a control endpoint: ``GET /_fault`` returns counters, ``POST /_fault`` with
``{"mode": "...", "health": "ok" | "fail" | "missing"}`` switches behaviour live and
resets the counters.

Modes (what ``/v1/chat/completions`` does):

- ``ok``       a short streamed answer with a usage chunk and ``[DONE]``
- ``json``     the same answer as one JSON completion, ignoring ``stream: true``
- ``nousage``  the same answer without a usage chunk
- ``slow``     200 chunks, 50 ms apart (to test client disconnects; see ``cancelled``)
- ``500``      HTTP 500 with an OpenAI-format error body
- ``garbage``  HTTP 200 ``text/event-stream`` whose events are not JSON
- ``hang``     accepts the request and never answers (not even headers)
- ``stall``    sends headers and a role-only chunk, then nothing
- ``die``      streams three chunks, then the process exits (``os._exit``)
- ``400``      HTTP 400 "maximum context length" error
- ``401``      HTTP 401 whose message quotes the bearer token back (like some real APIs)
- ``422``      HTTP 422 naming an unsupported role, worded as a FastAPI-based server does
- ``script``   answers by rule: ``POST /_fault`` ``{"mode": "script", "script": [[regex,
  reply], ...]}``; the first regex found in the request's message texts picks the reply
  (``""`` if none), streamed word by word or as JSON. ``GET /_fault`` lists every request
  body since the last ``POST`` under ``bodies``.

``/health`` answers 200 unless the mode is ``500``/``hang`` or health was set to
``fail`` (503) or ``missing`` (404, so clients fall back to ``/v1/models``).

It is a bare ASGI app on uvicorn (no framework), so it has no dependency on joulegate and
every byte it sends is visible here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from typing import Any

MODES = (
    "ok",
    "json",
    "nousage",
    "slow",
    "500",
    "garbage",
    "hang",
    "stall",
    "die",
    "400",
    "401",
    "422",
    "script",
)
ANSWER = ["Hello", " from", " the", " fault", " upstream", "."]

Scope = dict[str, Any]
Message = dict[str, Any]


class FaultUpstream:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.health = "ok"
        self.counters = {"requests": 0, "completed": 0, "cancelled": 0, "health_checks": 0}
        self.last_body: dict[str, Any] | None = None
        self.last_auth: str | None = None
        self.script: list[tuple[str, str]] = []
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        method, path = scope["method"], scope["path"]
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if path == "/_fault":
            if method == "POST":
                change = json.loads(body or b"{}")
                self.mode = change.get("mode", self.mode)
                self.health = change.get("health", self.health)
                self.script = [tuple(rule) for rule in change.get("script", self.script)]
                self.bodies = []
                self.counters = dict.fromkeys(self.counters, 0)
            state = {
                "mode": self.mode,
                "health": self.health,
                **self.counters,
                "last_body": self.last_body,
                "last_auth": self.last_auth,
                "bodies": self.bodies,
            }
            await _json(send, 200, state)
        elif path == "/health":
            self.counters["health_checks"] += 1
            if self.health == "missing":
                await _json(send, 404, {"detail": "Not Found"})
            elif self.health == "fail" or self.mode in ("500", "hang"):
                await _json(send, 503, {"status": "unhealthy"})
            else:
                await _json(send, 200, {"status": "ok"})
        elif path == "/v1/models":
            ok = self.health != "fail" and self.mode not in ("500", "hang")
            # As vLLM writes its model card: the context window is max_model_len.
            card = {"id": "fault-model", "object": "model", "max_model_len": 4096}
            models = {"object": "list", "data": [card]}
            await _json(send, 200 if ok else 503, models)
        elif path == "/v1/chat/completions" and method == "POST":
            self.counters["requests"] += 1
            self.last_body = json.loads(body or b"{}")
            self.last_auth = headers.get("authorization")
            self.bodies.append(self.last_body)
            await self.chat(self.last_body, receive, send)
        else:
            await _json(send, 404, {"detail": "Not Found"})

    async def chat(self, req: dict[str, Any], receive: Any, send: Any) -> None:
        mode = self.mode
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "500":
            return await _json(send, 500, _error("upstream exploded", "server_error"))
        if mode == "400":
            msg = "This model's maximum context length is 2048 tokens; you asked for 9000."
            return await _json(send, 400, _error(msg, "invalid_request_error"))
        if mode == "422":
            detail = [
                {
                    "type": "literal_error",
                    "loc": ["body", "messages", 0, "role"],
                    "msg": "Input should be 'system', 'user' or 'assistant'",
                }
            ]
            return await _json(send, 422, {"detail": detail})
        if mode == "401":
            msg = f"Incorrect API key provided: {self.last_auth}."
            return await _json(send, 401, _error(msg, "invalid_request_error"))
        if mode == "json" or not req.get("stream"):
            return await _json(send, 200, _completion(req, self.parts(req)))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        # uvicorn drops writes after a disconnect silently, so watch for it explicitly.
        streaming = asyncio.ensure_future(self._stream(mode, req, send))
        gone = asyncio.ensure_future(_disconnected(receive))
        await asyncio.wait({streaming, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not streaming.done():
            streaming.cancel()
            self.counters["cancelled"] += 1
            return
        gone.cancel()
        streaming.result()
        self.counters["completed"] += 1
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def parts(self, req: dict[str, Any]) -> list[str]:
        """The answer's pieces: the script's reply in ``script`` mode, else ``ANSWER``."""
        if self.mode != "script":
            return ANSWER
        text = "\n".join(
            m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
            for m in req.get("messages", [])
        )
        reply = next((r for pattern, r in self.script if re.search(pattern, text)), "")
        return re.findall(r"\s*\S+", reply) or [""]

    async def _stream(self, mode: str, req: dict[str, Any], send: Any) -> None:
        async def event(data: str) -> None:
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {data}\n\n".encode(),
                    "more_body": True,
                }
            )

        cid, model = f"chatcmpl-{time.time_ns()}", req.get("model", "fault-model")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            return json.dumps(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
            )

        await event(chunk({"role": "assistant", "content": ""}))
        if mode == "stall":
            await asyncio.sleep(3600)
        if mode == "garbage":
            await event("<html>this is not json</html>")
            return await event("[DONE]")
        parts = ANSWER * 40 if mode == "slow" else self.parts(req)
        for i, part in enumerate(parts):
            if mode == "die" and i == 3:
                os._exit(1)
            if mode == "slow":
                await asyncio.sleep(0.05)
            await event(chunk({"content": part}))
        await event(chunk({}, "stop"))
        if mode != "nousage" and (req.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": 11,
                "completion_tokens": len(parts),
                "total_tokens": 11 + len(parts),
            }
            await event(
                json.dumps(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        await event("[DONE]")


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _completion(req: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    text = "".join(parts)
    return {
        "id": f"chatcmpl-{time.time_ns()}",
        "object": "chat.completion",
        "model": req.get("model", "fault-model"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": 11,
            "completion_tokens": len(parts),
            "total_tokens": 11 + len(parts),
        },
    }


def _error(message: str, type_: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": None}}


async def _json(send: Any, status: int, obj: Any) -> None:
    body = json.dumps(obj).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
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
    parser.add_argument("--mode", choices=MODES, default="ok")
    args = parser.parse_args()
    uvicorn.run(
        FaultUpstream(args.mode),
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
