"""``/v1/responses``: a chat pipeline answer, rewritten as a Responses API ``response``.

The request ran through ``ChatService`` as a chat request (``responses_protocol.py``), so
routing, capabilities, budgets, metering and the ledger row are the chat path's. Here the
answer becomes output items: a ``reasoning`` item for a reasoning model's
``reasoning_content``, a ``message`` with ``output_text`` (and ``refusal``) parts, and one
``function_call`` item per tool call. Streamed, the same items are built from the chat
deltas as they come, with the Responses API's events (``response.created``,
``response.output_item.added``, ``response.output_text.delta``, ...,
``response.completed``), which the official client's ``responses.create(stream=True)``
reads. A whole answer goes through the same builder, so both forms always agree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from joulegate.server.call import Outcome
from joulegate.server.chat_stream import DONE, read_events, sse
from joulegate.server.responses_protocol import ResponsesRequest

__all__ = ["as_response"]

# A chat finish reason that cut the answer short, as the Responses API says it.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def as_response(outcome: Outcome, req: ResponsesRequest) -> Outcome:
    """``outcome`` (a chat completion, whole or streamed) as a Responses API answer."""
    if outcome.stream is not None:
        return replace(outcome, stream=_events(outcome.stream, req))
    assert outcome.body is not None
    return replace(outcome, body=_whole(outcome.body, req))


def _whole(chat: dict[str, Any], req: ResponsesRequest) -> dict[str, Any]:
    out = _Builder(req, chat, streaming=False)
    choice = chat["choices"][0]
    message = dict(choice["message"])
    calls = message.get("tool_calls")
    if calls:  # as a stream sends them: fragments with their index
        message["tool_calls"] = [{"index": i, **c} for i, c in enumerate(calls)]
    out.delta(message, (choice.get("logprobs") or {}).get("content"))
    out.finish(choice.get("finish_reason"), chat.get("usage"), chat.get("joulegate"))
    return out.response


async def _events(stream: AsyncIterator[bytes], req: ResponsesRequest) -> AsyncIterator[bytes]:
    out: _Builder | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    receipt: dict[str, Any] | None = None
    # Closing ``chunks`` closes the chat stream, which stops the model (client gone).
    async with aclosing(read_events(stream)) as chunks:
        async for chunk in chunks:
            if chunk is DONE:
                if out is not None:
                    out.finish(finish_reason, usage, receipt)
                    yield out.flush()
                return
            if "error" in chunk:  # the tier failed after the answer had begun
                if out is None:
                    yield sse(chunk)
                else:
                    out.fail(chunk["error"])
                    yield out.flush()
                return
            if out is None:
                out = _Builder(req, chunk, streaming=True)
            for choice in chunk.get("choices") or ():
                logprobs = (choice.get("logprobs") or {}).get("content")
                out.delta(choice.get("delta") or {}, logprobs)
                finish_reason = choice.get("finish_reason") or finish_reason
            usage = chunk.get("usage") or usage
            receipt = chunk.get("joulegate") or receipt
            yield out.flush()


class _Builder:
    """One response's output items, built from chat deltas, and its events when streamed.

    An item is open while its deltas come; a delta of another kind closes it (a tool call
    after the text closes the message), and the end of the answer closes the rest.
    """

    def __init__(self, req: ResponsesRequest, first: dict[str, Any], *, streaming: bool) -> None:
        self.req = req
        self.streaming = streaming
        self._base = str(first["id"]).removeprefix("chatcmpl-")
        self.response: dict[str, Any] = {
            "id": f"resp_{self._base}",
            "object": "response",
            "created_at": first["created"],
            "status": "in_progress",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "metadata": req.metadata or {},
            "model": first["model"],
            "output": [],
            "parallel_tool_calls": req.parallel_tool_calls is not False,
            "previous_response_id": None,
            "reasoning": req.reasoning or {"effort": None, "summary": None},
            "store": False,  # nothing is stored, whatever the request asked
            "temperature": req.temperature,
            "text": req.text or {"format": {"type": "text"}},
            "tool_choice": req.tool_choice or "auto",
            "tools": req.tools or [],
            "top_logprobs": req.top_logprobs,
            "top_p": req.top_p,
            "truncation": req.truncation or "disabled",
            "usage": None,
            "user": req.user,
        }
        self._seq = 0
        self._pending: list[bytes] = []
        self._items = 0  # item ids: unique within the response
        self._open: dict[str, dict[str, Any]] = {}  # "message" / "reasoning" → item
        self._parts: dict[str, int] = {}  # the open message's part kind → content index
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool-call index → item
        self._emit("response.created", response=self.response)
        self._emit("response.in_progress", response=self.response)

    # -- deltas ---------------------------------------------------------------------------

    def delta(self, delta: dict[str, Any], logprobs: list[dict[str, Any]] | None) -> None:
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            item = self._item("reasoning", summary=[], content=[])
            self._text(item, "reasoning_text", reasoning, None)
        for kind, key in (("output_text", "content"), ("refusal", "refusal")):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._close("reasoning")
                item = self._item("message", role="assistant", content=[])
                self._text(item, kind, text, logprobs if kind == "output_text" else None)
        for fragment in delta.get("tool_calls") or ():
            self._call(fragment)

    def _item(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The open item of ``kind``, opened if there is none."""
        item = self._open.get(kind)
        if item is None:
            item = self._add(
                {"id": self._id(kind), "type": kind, "status": "in_progress", **fields}
            )
            self._open[kind] = item
            if kind == "message":
                self._parts = {}
        return item

    def _text(
        self, item: dict[str, Any], kind: str, text: str, logprobs: list[dict[str, Any]] | None
    ) -> None:
        """Append ``text`` to ``item``'s content part of ``kind`` (added on first use)."""
        key = "refusal" if kind == "refusal" else "text"
        parts = item["content"]
        index = self._parts.get(kind) if item["type"] == "message" else (0 if parts else None)
        if index is None:
            part: dict[str, Any] = {"type": kind, key: ""}
            if kind == "output_text":
                part.update(annotations=[], logprobs=[])
            parts.append(part)
            index = len(parts) - 1
            if item["type"] == "message":
                self._parts[kind] = index
            self._emit("response.content_part.added", **self._at(item, index), part=part)
        part = parts[index]
        part[key] += text
        fields: dict[str, Any] = {**self._at(item, index), "delta": text}
        if kind == "output_text":
            part["logprobs"] += logprobs or []
            fields["logprobs"] = logprobs or []
        self._emit(_DELTA_EVENT[kind], **fields)

    def _call(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index", 0)
        function = fragment.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            self._close("reasoning")
            self._close("message")
            item = self._add(
                {
                    "id": self._id("function_call"),
                    "type": "function_call",
                    "status": "in_progress",
                    "call_id": fragment.get("id") or f"call_{self._base}{self._items}",
                    "name": function.get("name") or "",
                    "arguments": "",
                }
            )
            self._calls[index] = item
        elif function.get("name") and not item["name"]:
            # Only the first name counts: llama-cpp-python's server repeats the id and the
            # name in every fragment, where OpenAI sends them once.
            item["name"] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item["arguments"] += arguments
            self._emit(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=self._index(item),
                delta=arguments,
            )

    # -- the end --------------------------------------------------------------------------

    def finish(
        self,
        finish_reason: str | None,
        usage: dict[str, Any] | None,
        receipt: dict[str, Any] | None,
    ) -> None:
        cut = _INCOMPLETE.get(finish_reason or "")
        status = "incomplete" if cut else "completed"
        self._close("reasoning", status)
        self._close("message", status)
        for item in self._calls.values():
            self._close_call(item, status)
        self._calls = {}
        self.response.update(
            status=status,
            incomplete_details={"reason": cut} if cut else None,
            usage=_usage(usage),
        )
        if receipt is not None:
            self.response["joulegate"] = receipt
        self._emit(f"response.{status}", response=self.response)

    def fail(self, error: dict[str, Any]) -> None:
        """The tier failed mid-answer: an ``error`` event, then ``response.failed``."""
        code, message = error.get("code"), error.get("message") or "the tier failed"
        self._emit("error", code=code, message=message, param=error.get("param"))
        # The response's own error code is one of OpenAI's few; the event carries ours.
        self.response.update(status="failed", error={"code": "server_error", "message": message})
        self._emit("response.failed", response=self.response)

    def flush(self) -> bytes:
        """The events since the last flush, as SSE (empty when not streaming)."""
        out, self._pending = b"".join(self._pending), []
        return out

    # -- helpers --------------------------------------------------------------------------

    def _close(self, kind: str, status: str = "completed") -> None:
        item = self._open.pop(kind, None)
        if item is None:
            return
        for index, part in enumerate(item["content"]):
            done = {k: v for k, v in part.items() if k not in ("type", "annotations")}
            self._emit(_DONE_EVENT[part["type"]], **self._at(item, index), **done)
            self._emit("response.content_part.done", **self._at(item, index), part=part)
        item["status"] = status
        self._emit("response.output_item.done", output_index=self._index(item), item=item)

    def _close_call(self, item: dict[str, Any], status: str) -> None:
        item["status"] = status
        self._emit(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=self._index(item),
            name=item["name"],
            arguments=item["arguments"],
        )
        self._emit("response.output_item.done", output_index=self._index(item), item=item)

    def _add(self, item: dict[str, Any]) -> dict[str, Any]:
        self.response["output"].append(item)
        added = {**item, "content": []} if "content" in item else dict(item)
        self._emit("response.output_item.added", output_index=self._index(item), item=added)
        return item

    def _id(self, kind: str) -> str:
        self._items += 1
        prefix = {"message": "msg", "reasoning": "rs", "function_call": "fc"}[kind]
        return f"{prefix}_{self._base}{self._items:02d}"

    def _index(self, item: dict[str, Any]) -> int:
        return next(i for i, x in enumerate(self.response["output"]) if x is item)

    def _at(self, item: dict[str, Any], content_index: int) -> dict[str, Any]:
        return {
            "item_id": item["id"],
            "output_index": self._index(item),
            "content_index": content_index,
        }

    def _emit(self, kind: str, **fields: Any) -> None:
        """Write one event now (so it shows the items as they are at this point)."""
        if self.streaming:
            body = {"type": kind, "sequence_number": self._seq, **fields}
            self._seq += 1
            self._pending.append(sse(body, event=kind))


_DELTA_EVENT = {
    "output_text": "response.output_text.delta",
    "refusal": "response.refusal.delta",
    "reasoning_text": "response.reasoning_text.delta",
}
_DONE_EVENT = {
    "output_text": "response.output_text.done",
    "refusal": "response.refusal.done",
    "reasoning_text": "response.reasoning_text.done",
}


def _usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat usage as the Responses API names it."""
    if usage is None:
        return None
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": usage.get("prompt_tokens", 0),
        "input_tokens_details": {
            "cached_tokens": prompt.get("cached_tokens") or 0,
            "cache_write_tokens": 0,
        },
        "output_tokens": usage.get("completion_tokens", 0),
        "output_tokens_details": {"reasoning_tokens": completion.get("reasoning_tokens") or 0},
        "total_tokens": usage.get("total_tokens", 0),
    }
