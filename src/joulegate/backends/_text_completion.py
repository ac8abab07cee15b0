"""Plain-text completions upstream (``/v1/completions``): the body sent, and reading answers.

A text completion's answer is a chat answer with ``text`` where a chat chunk has
``delta.content`` (and a whole answer ``message.content``). Given that shape, each choice
is read by the chat reader, so both endpoints share one reader: its empty-answer checks,
usage, finish reasons and passthrough fields.
"""

from __future__ import annotations

from typing import Any

from joulegate.backends import sse
from joulegate.backends._request_body import request_body
from joulegate.backends.base import ChatParams

__all__ = ["COMPLETIONS_PATH", "TextChunkReader", "text_request_body"]

COMPLETIONS_PATH = "/v1/completions"


def text_request_body(params: ChatParams, model: str, extra_body: dict[str, Any]) -> dict[str, Any]:
    """The chat request's body (client extras, tier extras, what the gateway insists on),
    with ``params.prompt`` in place of the messages."""
    body = request_body(params, model, extra_body)
    del body["messages"]
    body["prompt"] = params.prompt
    return body


class TextChunkReader(sse.ChunkReader):
    """Reads ``text_completion`` chunks (or one whole ``text_completion``) as chat ones."""

    def _load(self, raw: str | bytes) -> dict[str, Any]:
        obj = super()._load(raw)
        choices = obj.get("choices")
        if isinstance(choices, list):
            obj["choices"] = [_as_chat(c) if isinstance(c, dict) else c for c in choices]
        return obj


def _as_chat(choice: dict[str, Any]) -> dict[str, Any]:
    if "text" not in choice:
        return choice
    rest = {k: v for k, v in choice.items() if k != "text"}
    text = choice["text"]
    return {**rest, "delta": {"content": text}, "message": {"content": text}}
