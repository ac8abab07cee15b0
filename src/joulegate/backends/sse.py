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


# The fields of a chunk, a choice and a delta that the gateway writes itself; every other
# field an upstream sends is passed through to the client as it came.
_CHUNK_OWN = frozenset({"id", "object", "created", "model", "choices", "usage"})
_CHOICE_OWN = frozenset({"index", "delta", "message", "finish_reason"})
_DELTA_OWN = frozenset({"content", "role"})
_USAGE_OWN = frozenset({"prompt_tokens", "completion_tokens", "total_tokens"})


def _others(obj: dict[str, Any], own: frozenset[str]) -> dict[str, Any]:
    """``obj``'s fields the gateway does not write itself, without nulls (a null is what
    the client gets for an absent field anyway, so it carries nothing)."""
    return {k: v for k, v in obj.items() if k not in own and v is not None}


class ChunkReader:
    """Turns chat-completion chunks into events and remembers what ends the answer.

    Besides the text, it keeps every other field of the first choice's deltas, of the
    choice and of the chunk (``tool_calls``, ``reasoning_content``, ``logprobs``,
    ``system_fingerprint``, ...) on the events, so the client gets them as sent.
    """

    def __init__(
        self, tier: str, *, read_logprobs: bool = False, hide_logprobs: bool = False
    ) -> None:
        self.tier = tier
        # ``read_logprobs``: take each token's log-prob from the choices' ``logprobs``
        # objects (``TextDelta.logprobs``, ``Finish.logprobs``: a cascade's confidence).
        # ``hide_logprobs``: the gateway asked for them, not the client, so the objects
        # are not passed through.
        self.read_logprobs = read_logprobs
        self.hide_logprobs = hide_logprobs
        self.logprobs: list[float] = []
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.usage_extra: dict[str, Any] | None = None
        self.done = False
        # The last chunk's and the finishing choice's passthrough fields.
        self.chunk_extra: dict[str, Any] | None = None
        self.finish_choice: dict[str, Any] | None = None
        # Characters of output that is not ``content``: reasoning, tool-call arguments.
        # Token estimates need them; and any output at all means the answer is not empty.
        self.reasoning_chars = 0
        self.other_chars = 0
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def empty(self) -> bool:
        """Nothing came back: no content, no tool call, no reasoning, no refusal."""
        return not self._parts and not self.reasoning_chars and not self.other_chars

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
        chunk_extra = _others(obj, _CHUNK_OWN) or None
        if chunk_extra:
            self.chunk_extra = chunk_extra
        out: list[StreamEvent] = []
        for choice in self._choices(obj):
            delta = choice.get("delta")
            event = self._event(
                delta if isinstance(delta, dict) else {},
                _others(choice, _CHOICE_OWN),
                chunk_extra,
                finishing=bool(choice.get("finish_reason")),
            )
            if event is not None:
                out.append(event)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return out

    def whole(self, raw: bytes) -> list[StreamEvent]:
        """A non-streamed ``chat.completion`` body, as the events a stream would give.

        The message's ``tool_calls`` become one fragment each, with the ``index`` a stream
        gives them, so both kinds of answer are assembled the same way.
        """
        obj = self._load(raw)
        self._take_usage(obj)
        choices = self._choices(obj)
        if not choices:
            raise MalformedResponse(f"tier {self.tier!r} sent an answer without choices")
        message = choices[0].get("message")
        message = dict(message) if isinstance(message, dict) else {}
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            message["tool_calls"] = [
                {"index": i, **c} if isinstance(c, dict) else c for i, c in enumerate(calls)
            ]
        self.chunk_extra = _others(obj, _CHUNK_OWN) or None
        self.finish_reason = str(choices[0].get("finish_reason") or "stop")
        event = self._event(
            message, _others(choices[0], _CHOICE_OWN), self.chunk_extra, finishing=False
        )
        return [event] if event is not None else []

    def _event(
        self,
        delta: dict[str, Any],
        choice_extra: dict[str, Any],
        chunk_extra: dict[str, Any] | None,
        *,
        finishing: bool,
    ) -> TextDelta | None:
        """The event for one choice's delta; None when it carries nothing for the client.

        On the finishing chunk, choice fields that come without any delta (a final
        ``logprobs``, vLLM's ``stop_reason``) are kept for :class:`Finish` instead.
        """
        content = delta.get("content")
        text = content if isinstance(content, str) else ""
        extra = _others(delta, _DELTA_OWN)
        logprobs = self._take_logprobs(choice_extra)
        if self.hide_logprobs:
            choice_extra = {k: v for k, v in choice_extra.items() if k != "logprobs"}
        if not text and not extra:  # its log-probs, if any, still reach Finish
            if finishing and choice_extra:
                self.finish_choice = choice_extra
                return None
            if not choice_extra:
                return None
        if text:
            self._parts.append(text)
        for key, value in extra.items():
            size = len(json.dumps(value)) if not isinstance(value, str) else len(value)
            if key == "reasoning_content":
                self.reasoning_chars += size
            else:
                self.other_chars += size
        return TextDelta(
            text,
            logprobs=logprobs,
            extra=extra or None,
            choice_extra=choice_extra or None,
            chunk_extra=chunk_extra,
        )

    def _take_logprobs(self, choice: dict[str, Any]) -> tuple[float, ...] | None:
        """The log-probs of the tokens in ``choice``'s OpenAI ``logprobs`` object (its
        ``content`` list), kept for ``Finish`` too; None when not read or not there."""
        if not self.read_logprobs:
            return None
        obj = choice.get("logprobs")
        content = obj.get("content") if isinstance(obj, dict) else None
        if not isinstance(content, list):
            return None
        out = []
        for token in content:
            value = token.get("logprob") if isinstance(token, dict) else None
            if isinstance(value, int | float):
                out.append(float(value))
        self.logprobs.extend(out)
        return tuple(out) or None

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
                details = usage.get("completion_tokens_details")
                reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
                self.usage = Usage(
                    int(usage["prompt_tokens"]),
                    int(usage["completion_tokens"]),
                    int(reasoning or 0),
                )
                self.usage_extra = _others(usage, _USAGE_OWN) or None


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
