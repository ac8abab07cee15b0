"""``/v1/responses``, OpenAI's Responses API, as far as joulegate serves it: statelessly.

A request becomes a chat request (:func:`chat_request`): ``instructions`` a system
message, ``input`` messages (function calls and their outputs included), function tools
chat tools, ``text.format`` a ``response_format``. What needs state or OpenAI's own
servers is a 400 that names it, never silently dropped: ``previous_response_id`` and
``conversation`` (nothing is stored: send the whole conversation as ``input``),
``background``, reusable ``prompt`` templates, built-in tools (web search, file search,
computer use, code interpreter, ...) and items that refer to stored ones.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from joulegate.server.errors import APIError
from joulegate.server.protocol import BoundedBody, ChatCompletionRequest, JoulegateOptions

__all__ = ["ResponseObject", "ResponsesRequest", "chat_request"]

_INCLUDE_LOGPROBS = "message.output_text.logprobs"
_TEXT_PARTS = ("input_text", "output_text")


class ResponsesRequest(BoundedBody):
    """The body of ``POST /v1/responses``. Unknown fields are passed to the chat request,
    and so to an upstream tier, as on the chat route."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] = Field(
        description="The conversation: a text, or a list of messages, function calls and "
        "function call outputs."
    )
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    include: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    stream: bool = False
    # ``include_obfuscation``: there is nothing to obfuscate on loopback, so nothing to do.
    stream_options: dict[str, Any] | None = None
    # Accepted, and nothing is stored: the response says ``store: false``.
    store: bool | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    # These only apply to built-in tools (rejected) and to truncating stored context.
    max_tool_calls: int | None = None
    truncation: Literal["auto", "disabled"] | None = None
    joulegate: JoulegateOptions | None = None
    # Refused with a 400 (see the module docstring).
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    background: bool | None = None
    prompt: dict[str, Any] | None = None

    @property
    def wants_logprobs(self) -> bool:
        return _INCLUDE_LOGPROBS in (self.include or ())


def chat_request(req: ResponsesRequest) -> ChatCompletionRequest:
    """``req`` as the chat pipeline runs it; a 400 for what joulegate does not offer, and a
    ``ValidationError`` for what the chat request's own checks refuse."""
    _refuse_stateful(req)
    fields: dict[str, Any] = {
        **(req.model_extra or {}),
        "model": req.model,
        "messages": _messages(req),
        "max_tokens": req.max_output_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "stream": req.stream,
        # The completed event carries the usage, so the pipeline always sends it.
        "stream_options": {"include_usage": True} if req.stream else None,
        "joulegate": req.joulegate,
    }
    if req.tools:
        fields["tools"] = [_tool(t, i) for i, t in enumerate(req.tools)]
    if req.tool_choice is not None:
        fields["tool_choice"] = _tool_choice(req.tool_choice)
    if req.parallel_tool_calls is not None:
        fields["parallel_tool_calls"] = req.parallel_tool_calls
    fmt = (req.text or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        fields["response_format"] = _response_format(fmt)
    effort = (req.reasoning or {}).get("effort")
    if effort is not None:
        fields["reasoning_effort"] = effort
    if req.wants_logprobs:
        fields["logprobs"] = True
        fields["top_logprobs"] = req.top_logprobs or 0
    if req.user is not None:
        fields["user"] = req.user
    return ChatCompletionRequest.model_validate(fields)


def _unsupported(param: str, what: str) -> APIError:
    return APIError(
        400,
        f"{what} is not supported by joulegate's /v1/responses, which is stateless and has "
        "no built-in tools (docs/compatibility.md).",
        param=param,
        code="unsupported_parameter",
    )


def _refuse_stateful(req: ResponsesRequest) -> None:
    if req.previous_response_id is not None:
        raise _unsupported(
            "previous_response_id",
            "'previous_response_id' (stored responses; send the whole conversation as "
            "'input' instead)",
        )
    if req.conversation is not None:
        raise _unsupported("conversation", "'conversation' (stored conversations)")
    if req.background:
        raise _unsupported("background", "Background mode")
    if req.prompt is not None:
        raise _unsupported("prompt", "'prompt' (stored prompt templates)")


def _messages(req: ResponsesRequest) -> list[dict[str, Any]]:
    """The conversation as chat messages, ``instructions`` first."""
    messages: list[dict[str, Any]] = []
    if req.instructions:
        messages.append({"role": "system", "content": req.instructions})
    if isinstance(req.input, str):
        return [*messages, {"role": "user", "content": req.input}]
    if not req.input:
        raise APIError(400, "'input' holds no items.", param="input", code="invalid_value")
    for i, item in enumerate(req.input):
        where = f"input[{i}]"
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise APIError(
                    400,
                    f"Invalid role {role!r} in {where}.",
                    param=f"{where}.role",
                    code="invalid_value",
                )
            messages.append({"role": role, "content": _content(item.get("content"), where)})
        elif kind == "function_call":
            call = {
                "id": _required(item, "call_id", where),
                "type": "function",
                "function": {
                    "name": _required(item, "name", where),
                    "arguments": item.get("arguments") or "",
                },
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                # One turn's text and calls, or its several calls: one assistant message.
                last.setdefault("tool_calls", []).append(call)
            else:
                # "" rather than null: llama-cpp-python's server rejects a null content.
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _required(item, "call_id", where),
                    "content": output if isinstance(output, str) else _content(output, where),
                }
            )
        elif kind == "reasoning":
            continue  # a model's own earlier reasoning: chat models take none as input
        else:
            raise _unsupported(where, f"Input items of type {kind!r}")
    return messages


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    """A message's content as chat reads it: one string when it is only text."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise APIError(
            400, f"Invalid content in {where}.", param=f"{where}.content", code="invalid_value"
        )
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PARTS or kind == "refusal":
            text = part.get("text") if kind != "refusal" else part.get("refusal")
            if not isinstance(text, str):
                raise APIError(
                    400,
                    f"Each {kind} part needs its text as a string.",
                    param=f"{where}.content[{j}]",
                    code="invalid_value",
                )
            parts.append({"type": "text", "text": text})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image = {"url": part["image_url"], "detail": part.get("detail") or "auto"}
            parts.append({"type": "image_url", "image_url": image})
        else:
            what = (
                "Images by file_id" if kind == "input_image" else f"Content parts of type {kind!r}"
            )
            raise _unsupported(f"{where}.content[{j}]", what)
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _required(item: dict[str, Any], name: str, where: str) -> Any:
    value = item.get(name)
    if not value:
        raise APIError(
            400,
            f"Missing required parameter: '{where}.{name}'.",
            param=f"{where}.{name}",
            code="invalid_value",
        )
    return value


def _tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    """A Responses function tool as a chat tool (the same fields, one level down)."""
    kind = tool.get("type")
    if kind != "function":
        raise _unsupported(f"tools[{i}]", f"The built-in tool {kind!r}")
    function = {"name": _required(tool, "name", f"tools[{i}]")}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        return choice
    if choice.get("type") == "function" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _unsupported("tool_choice", f"tool_choice of type {choice.get('type')!r}")


def _response_format(fmt: dict[str, Any]) -> dict[str, Any]:
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "description", "strict") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    return {"type": kind}


# -- the answer, as the OpenAPI document describes it -----------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ResponseObject(_Open):
    """A ``response``; ``joulegate`` is the receipt, as on chat completions. Streamed, the
    Responses API's events: ``response.created`` ... ``response.completed``."""

    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "incomplete", "failed", "in_progress"]
    model: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None
    joulegate: dict[str, Any] | None = None
