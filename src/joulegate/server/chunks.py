"""Building OpenAI response bodies and SSE chunks.

Plain dicts rather than pydantic models: these are built for every token of every
stream, and the gateway's own overhead is part of what it promises to keep small.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

from joulegate.backends.base import Usage

# A random per-process prefix and a counter: unique, and no getrandom() syscall per request.
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count()


def new_id() -> str:
    return f"chatcmpl-{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def usage_dict(usage: Usage, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The usage object: the counts the meter used, then every other field the upstream
    sent (``completion_tokens_details``, ``prompt_tokens_details``, ...)."""
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if extra:
        out.update(extra)
    return out


def merge_delta(acc: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """Add one streamed delta to what came before, the way OpenAI's own client assembles a
    stream: strings are joined, lists extended (``logprobs.content``), objects merged, and
    lists of indexed entries (``tool_calls`` fragments) merged entry by entry on ``index``;
    ``index`` and ``type`` are labels, so the latest value stands. One difference: an ``id``
    or ``name`` repeated unchanged is kept once. Returns ``acc``."""
    for key, value in delta.items():
        old = acc.get(key)
        if old is None or key in ("index", "type"):
            if isinstance(value, list) and _indexed(value):
                acc[key] = _merge_indexed([], value)
            else:
                acc[key] = _copy(value)
        elif isinstance(old, str) and isinstance(value, str):
            # An id or a name comes whole; llama-cpp-python's server repeats both in every
            # tool-call fragment, and joining the repeats would make a name no tool has.
            repeated = key in ("id", "name") and value == old
            acc[key] = old if repeated else old + value
        elif isinstance(old, dict) and isinstance(value, dict):
            merge_delta(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            acc[key] = _merge_indexed(old, value) if _indexed(value) else old + _copy(value)
        else:
            acc[key] = _copy(value)
    return acc


def finished_message(extra: dict[str, Any]) -> dict[str, Any]:
    """Assembled message fields as a non-streamed answer has them: ``tool_calls`` entries
    carry no ``index`` there."""
    calls = extra.get("tool_calls")
    if isinstance(calls, list):
        extra = {
            **extra,
            "tool_calls": [
                {k: v for k, v in c.items() if k != "index"} if isinstance(c, dict) else c
                for c in calls
            ],
        }
    return extra


def _indexed(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(x, dict) and "index" in x for x in items)


def _merge_indexed(acc: list[Any], fragments: list[Any]) -> list[Any]:
    for fragment in fragments:
        i = fragment["index"]
        for entry in acc:
            if isinstance(entry, dict) and entry.get("index") == i:
                merge_delta(entry, fragment)
                break
        else:
            acc.append(merge_delta({}, fragment))
    return acc


def _copy(value: Any) -> Any:
    """Deep enough that merging later fragments never mutates an event's own dicts."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def completion_body(
    request_id: str,
    model: str,
    created: int,
    text: str,
    finish_reason: str,
    usage: Usage,
    receipt: dict[str, Any],
    *,
    message_extra: dict[str, Any] | None = None,
    choice_extra: dict[str, Any] | None = None,
    chunk_extra: dict[str, Any] | None = None,
    usage_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion``; the ``*_extra`` fields are the upstream's, passed through on
    top of the gateway's own (``content: null`` when the answer is only tool calls)."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if message_extra:
        message.update(finished_message(message_extra))
        if not text and message.get("tool_calls"):
            message["content"] = None
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        **(chunk_extra or {}),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                **(choice_extra or {}),
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage_dict(usage, usage_extra),
        "joulegate": receipt,
    }


class ChunkWriter:
    """Formats the chunks of one streamed completion as SSE ``data:`` lines.

    Fields an upstream sent beyond the gateway's own (``TextDelta.extra`` and the rest)
    are written into the chunk where they came, so the client assembles what the
    upstream said.
    """

    def __init__(self, request_id: str, model: str) -> None:
        self.request_id = request_id
        self.model = model
        self.created = int(time.time())
        # The upstream's chunk-level fields (``system_fingerprint``): once seen, on every
        # chunk after, as the upstream writes them on every chunk.
        self.chunk_extra: dict[str, Any] = {}

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {
            "id": self.request_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            **self.chunk_extra,
            "choices": choices,
            **extra,
        }
        return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

    def _see(self, chunk_extra: dict[str, Any] | None) -> None:
        if chunk_extra:
            self.chunk_extra.update(chunk_extra)

    def role(self, chunk_extra: dict[str, Any] | None = None, content: str | None = "") -> bytes:
        """The opening chunk. ``content`` None when the answer starts with something other
        than text (tool calls, reasoning), as upstreams write it: a client assembling the
        stream then gets ``content: null`` for an answer that is only tool calls."""
        self._see(chunk_extra)
        return self._chunk(
            [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
        )

    def delta(
        self,
        text: str,
        extra: dict[str, Any] | None = None,
        choice_extra: dict[str, Any] | None = None,
        chunk_extra: dict[str, Any] | None = None,
    ) -> bytes:
        self._see(chunk_extra)
        delta: dict[str, Any] = {"content": text} if text or not extra else {}
        if extra:
            delta.update(extra)
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        if choice_extra:
            choice.update(choice_extra)
        return self._chunk([choice])

    def finish(
        self,
        finish_reason: str,
        receipt: dict[str, Any] | None,
        choice_extra: dict[str, Any] | None = None,
        chunk_extra: dict[str, Any] | None = None,
    ) -> bytes:
        self._see(chunk_extra)
        extra = {"joulegate": receipt} if receipt is not None else {}
        choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}
        if choice_extra:
            choice.update(choice_extra)
            choice["finish_reason"] = finish_reason
        return self._chunk([choice], **extra)

    def usage(
        self, usage: Usage, receipt: dict[str, Any], usage_extra: dict[str, Any] | None = None
    ) -> bytes:
        return self._chunk([], usage=usage_dict(usage, usage_extra), joulegate=receipt)

    @staticmethod
    def error(body: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"
