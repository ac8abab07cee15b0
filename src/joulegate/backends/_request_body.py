"""The JSON body joulegate sends upstream for one chat request.

Client extras come first, then the tier's ``extra_body``, then what the gateway insists
on: the tier's model, streaming, and ``stream_options.include_usage`` (the pipeline
collects the stream for non-streaming clients), so token counts reach the meter whatever
the client asked for, and ``logprobs`` when the gateway wants the answer's confidence from
a tier that has them. ``tier_messages`` maps what some servers cannot read.
"""

from __future__ import annotations

from typing import Any

from joulegate.backends.base import ChatParams


def request_body(
    params: ChatParams,
    model: str,
    extra_body: dict[str, Any],
    supported: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The upstream request: client extras, then tier extras, then what we insist on.

    ``supported``: the tier's capabilities, which decide how ``developer`` messages go.
    """
    body: dict[str, Any] = {**params.extra, **extra_body}
    stream_options = body.get("stream_options")
    body.update(
        model=model,
        messages=tier_messages(params.messages, supported),
        stream=True,
        stream_options={
            **(stream_options if isinstance(stream_options, dict) else {}),
            "include_usage": True,
        },
    )
    for name, value in (
        ("max_tokens", params.max_tokens),
        ("temperature", params.temperature),
        ("top_p", params.top_p),
        ("seed", params.seed),
    ):
        if value is not None:
            body[name] = value
    if params.stop:
        body["stop"] = list(params.stop)
    _, for_gateway = reads_logprobs(params, supported)
    if for_gateway and not body.get("logprobs"):
        # For the gateway (a cascade's confidence), not the client: the sampled tokens' own
        # log-probs, no alternatives (llama-cpp-python's server sends none without a
        # ``top_logprobs``; OpenAI and vLLM take 0).
        body["logprobs"] = True
        body.setdefault("top_logprobs", 0)
    return body


def reads_logprobs(params: ChatParams, supported: frozenset[str]) -> tuple[bool, bool]:
    """Whether the answer's token log-probs are read for the gateway, and whether they are
    then kept from the client (who did not ask for them)."""
    asked = bool(params.extra.get("logprobs"))
    read = params.want_logprobs and (asked or "logprobs" in supported)
    return read, read and not asked


def tier_messages(
    messages: list[dict[str, Any]], supported: frozenset[str]
) -> list[dict[str, Any]]:
    """``messages`` as a tier reads them. Two mappings, both meaning-preserving:

    - ``developer`` becomes ``system`` unless the tier declares the ``developer_role``
      capability: llama.cpp's server and most open servers reject the newer role, and a
      chat model reads a system message the way OpenAI's models read a developer one;
    - an assistant turn that only called tools gets ``content: ""``: OpenAI allows the
      content to be null or absent there, and llama-cpp-python's server accepts neither
      (it rejects the null and its chat templates read the key), but takes ``""``.
    """
    developer = "developer_role" not in supported
    out = []
    for m in messages:
        if developer and m.get("role") == "developer":
            m = {**m, "role": "system"}
        if m.get("tool_calls") and m.get("content") is None:
            m = {**m, "content": ""}
        out.append(m)
    return out
