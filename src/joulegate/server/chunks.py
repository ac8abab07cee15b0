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


def usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def completion_body(
    request_id: str,
    model: str,
    created: int,
    text: str,
    finish_reason: str,
    usage: Usage,
    receipt: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage_dict(usage),
        "joulegate": receipt,
    }


class ChunkWriter:
    """Formats the chunks of one streamed completion as SSE ``data:`` lines."""

    def __init__(self, request_id: str, model: str) -> None:
        self.request_id = request_id
        self.model = model
        self.created = int(time.time())

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {
            "id": self.request_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
            **extra,
        }
        return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

    def role(self) -> bytes:
        return self._chunk(
            [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
        )

    def delta(self, text: str) -> bytes:
        return self._chunk(
            [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}]
        )

    def finish(self, finish_reason: str, receipt: dict[str, Any] | None) -> bytes:
        extra = {"joulegate": receipt} if receipt is not None else {}
        return self._chunk(
            [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}], **extra
        )

    def usage(self, usage: Usage, receipt: dict[str, Any]) -> bytes:
        return self._chunk([], usage=usage_dict(usage), joulegate=receipt)

    @staticmethod
    def error(body: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"
