"""Server-sent events, as far as OpenAI-compatible servers use them.

Every server we reach (vLLM, llama.cpp, Ollama, Ray Serve, hosted APIs) sends
``data: <json>`` events separated by blank lines and ends with ``data: [DONE]``; some
interleave ``: ping`` comments as keep-alives. That subset is a dozen lines, so it is
parsed here rather than through another dependency.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from joulegate.backends.base import BackendError, StreamEvent, TextDelta, Usage

DONE = "[DONE]"


async def iter_data(lines: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """Yield the ``data`` payload of each event; multi-line data is joined with ``\\n``.

    Comments, ``event:``/``id:``/``retry:`` fields and unknown fields are skipped: the
    chat-completions stream carries everything in ``data``. A final event that is not
    followed by a blank line (a server closing right after it) is still delivered.
    """
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


class MalformedResponse(BackendError):
    """The upstream answered something that is not an OpenAI chat-completions stream."""

    code = "upstream_malformed"


class ChunkReader:
    """Turns chat-completion chunks into events and remembers what ends the answer."""

    def __init__(self, tier: str) -> None:
        self.tier = tier
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def _load(self, raw: str | bytes) -> dict[str, Any]:
        try:
            obj = json.loads(raw)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise MalformedResponse(f"tier {self.tier!r} sent a malformed answer (not JSON)")
        return obj

    def feed(self, payload: str, redact: Callable[[str], str] = str) -> list[StreamEvent]:
        obj = self._load(payload)
        if "error" in obj:
            raise BackendError(f"tier {self.tier!r} reported: {redact(error_text(obj))}")
        self._take_usage(obj)
        out: list[StreamEvent] = []
        for choice in self._choices(obj):
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                self._parts.append(content)
                out.append(TextDelta(content))
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return out

    def whole(self, raw: bytes) -> list[StreamEvent]:
        """A non-streamed ``chat.completion`` body, as the events a stream would give."""
        obj = self._load(raw)
        self._take_usage(obj)
        choices = self._choices(obj)
        if not choices:
            raise MalformedResponse(f"tier {self.tier!r} sent an answer without choices")
        message = choices[0].get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        self.finish_reason = str(choices[0].get("finish_reason") or "stop")
        if isinstance(content, str) and content:
            self._parts.append(content)
            return [TextDelta(content)]
        return []

    def _choices(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        choices = obj.get("choices", [])
        if not isinstance(choices, list) or ("choices" not in obj and "usage" not in obj):
            raise MalformedResponse(f"tier {self.tier!r} sent a chunk that is not a completion")
        # n is always 1 here: only the first choice is the answer.
        return [c for c in choices[:1] if isinstance(c, dict)]

    def _take_usage(self, obj: dict[str, Any]) -> None:
        usage = obj.get("usage")
        if isinstance(usage, dict):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                self.usage = Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))


def error_text(obj: dict[str, Any]) -> str:
    err = obj.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err)
    if err:
        return str(err)
    return str(obj.get("detail") or obj.get("message") or obj)


def error_message(raw: bytes) -> str:
    try:
        obj = json.loads(raw)
    except ValueError:
        obj = None
    text = error_text(obj) if isinstance(obj, dict) else raw.decode("utf-8", "replace")
    text = " ".join(text.split())
    return (text[:300] + "…") if len(text) > 300 else (text or "(empty body)")


__all__ = ["DONE", "ChunkReader", "MalformedResponse", "error_message", "error_text", "iter_data"]
