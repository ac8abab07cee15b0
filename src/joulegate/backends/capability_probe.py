"""``joulegate tiers --probe``: ask an upstream what it can really do, one tiny request each.

A tier's capabilities decide which requests it is given (``server/capabilities.py``), so a
wrong declaration either drops a feature silently or refuses requests the tier could
serve. The probe sends each capability its smallest telling request and checks the
*answer*, not only the status: a server that accepts ``tools`` but answers in prose does
not support tools. Each probe costs a few tokens (``max_tokens`` 24; 200 for JSON, which
must have room to close its braces), at temperature 0.

One capability cannot be judged from here: ``vision``. A text-only model behind a lenient
server accepts an image and answers as if it had seen it, so a 200 proves nothing; the
probe reports whether the server *accepts* images and leaves the claim to the config.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from joulegate.backends.settings import CAPABILITIES, Capability, TierSettings

__all__ = ["ProbeOutcome", "probe_capabilities", "probe_context_length"]

# Where servers say a model's context window in its ``/v1/models`` card: vLLM
# (``max_model_len``), OpenRouter and LM Studio (``context_length``), Groq
# (``context_window``). OpenAI, Ollama and llama-cpp-python's server say nothing.
CONTEXT_FIELDS = ("max_model_len", "context_length", "context_window")

MAX_TOKENS = 24
# JSON answers need room to close their braces: a cut-off object is not valid JSON.
JSON_MAX_TOKENS = 200
# A 1x1 red PNG.
_PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8Dw"
    "HwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The current time in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class ProbeOutcome:
    """One capability's probe: ``ok`` None when it could not be told (vision, errors)."""

    capability: Capability
    ok: bool | None
    detail: str


_Check = Callable[[httpx.Response], tuple[bool | None, str]]


class _Verdict(Exception):
    """A check's "no", with the reason, raised from inside a parse."""


def _client(tier: TierSettings, timeout_s: float) -> httpx.AsyncClient:
    """A client for an ``openai`` tier's server root, with its key when it has one."""
    if tier.kind != "openai" or not tier.base_url:
        raise ValueError(f"tier {tier.name!r} is not an upstream: nothing to probe")
    base = tier.base_url.rstrip("/").removesuffix("/v1")
    headers = {}
    if tier.api_key_env and os.environ.get(tier.api_key_env):
        headers["authorization"] = f"Bearer {os.environ[tier.api_key_env]}"
    return httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout_s)


async def probe_capabilities(tier: TierSettings, timeout_s: float = 60.0) -> list[ProbeOutcome]:
    """Probe every capability of an ``openai`` tier, one after the other (a small server
    answers one request at a time anyway, and concurrent probes would interrupt it)."""
    async with _client(tier, timeout_s) as client:
        probes = _probes(client, tier.model)
        out = []
        for name in CAPABILITIES:
            try:
                ok, detail = await probes[name]()
            except httpx.HTTPError as exc:
                ok, detail = None, f"no answer ({type(exc).__name__})"
            out.append(ProbeOutcome(name, ok, detail))
        return out


def _probes(
    client: httpx.AsyncClient, model: str
) -> dict[Capability, Callable[[], Awaitable[tuple[bool | None, str]]]]:
    ask = [{"role": "user", "content": "What time is it in Paris?"}]

    async def chat(check: _Check, **body: Any) -> tuple[bool | None, str]:
        # Temperature 0: the same server gives the same verdict every time.
        payload = {
            "model": model,
            "messages": ask,
            "max_tokens": MAX_TOKENS,
            "temperature": 0,
            **body,
        }
        resp = await client.post("/v1/chat/completions", json=payload)
        if resp.status_code >= 400:
            return False, f"HTTP {resp.status_code}"
        try:
            return check(resp)
        except _Verdict as verdict:
            return False, str(verdict)
        except (ValueError, KeyError, IndexError, TypeError):
            return False, "answer not in the OpenAI format"

    def message(resp: httpx.Response) -> dict[str, Any]:
        msg: dict[str, Any] = resp.json()["choices"][0]["message"]
        return msg

    def tools(resp: httpx.Response) -> tuple[bool | None, str]:
        calls = message(resp).get("tool_calls") or []
        if not calls:
            return False, "answered without a tool call"
        json.loads(calls[0]["function"]["arguments"])
        return True, f"called {calls[0]['function']['name']}"

    def parsed(resp: httpx.Response) -> Any:
        try:
            return json.loads(message(resp).get("content") or "")
        except json.JSONDecodeError:
            ended = resp.json()["choices"][0].get("finish_reason")
            raise _Verdict(f"not valid JSON (finish_reason {ended})") from None

    def json_object(resp: httpx.Response) -> tuple[bool | None, str]:
        value = parsed(resp)
        return (True, "valid JSON object") if isinstance(value, dict) else (False, "not an object")

    def json_schema(resp: httpx.Response) -> tuple[bool | None, str]:
        value = parsed(resp)
        ok = isinstance(value, dict) and isinstance(value.get("answer"), str)
        return (True, "matches the schema") if ok else (False, "does not match the schema")

    def logprobs(resp: httpx.Response) -> tuple[bool | None, str]:
        content = (resp.json()["choices"][0].get("logprobs") or {}).get("content") or []
        if not content:
            return False, "no logprobs in the answer"
        top = content[0].get("top_logprobs") or []
        return True, f"{len(content)} tokens, {len(top)} alternatives each"

    def reasoning(resp: httpx.Response) -> tuple[bool | None, str]:
        body = resp.json()
        thought = message(resp).get("reasoning_content")
        details = (body.get("usage") or {}).get("completion_tokens_details") or {}
        if thought or details.get("reasoning_tokens"):
            return True, f"{details.get('reasoning_tokens', '?')} reasoning tokens"
        return False, "no reasoning_content"

    def accepted(resp: httpx.Response) -> tuple[bool | None, str]:
        message(resp)
        return True, "accepted"

    def vision(resp: httpx.Response) -> tuple[bool | None, str]:
        message(resp)
        return None, "accepted an image; whether the model sees it cannot be probed"

    async def embeddings() -> tuple[bool | None, str]:
        resp = await client.post("/v1/embeddings", json={"model": model, "input": "probe"})
        if resp.status_code >= 400:
            return False, f"HTTP {resp.status_code}"
        try:
            vector = resp.json()["data"][0]["embedding"]
        except (ValueError, KeyError, IndexError, TypeError):
            return False, "answer not in the OpenAI format"
        return True, f"{len(vector)} dimensions"

    async def completions() -> tuple[bool | None, str]:
        body = {"model": model, "prompt": "The sky is", "max_tokens": 4}
        resp = await client.post("/v1/completions", json=body)
        if resp.status_code >= 400:
            return False, f"HTTP {resp.status_code}"
        try:
            resp.json()["choices"][0]["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            return False, "answer not in the OpenAI format"
        return True, "accepted"

    image = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What colour is this pixel?"},
                {"type": "image_url", "image_url": {"url": _PIXEL}},
            ],
        }
    ]
    developer = [{"role": "developer", "content": "Answer in one word."}, *ask]
    forced = {"type": "function", "function": {"name": "get_time"}}
    schema_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": _SCHEMA, "strict": True},
    }
    return {
        "tools": lambda: chat(tools, tools=[_TOOL], tool_choice=forced),
        "json_object": lambda: chat(
            json_object,
            messages=[{"role": "user", "content": 'Reply with {"city": "Paris"}.'}],
            response_format={"type": "json_object"},
            max_tokens=JSON_MAX_TOKENS,
        ),
        "json_schema": lambda: chat(
            json_schema, response_format=schema_format, max_tokens=JSON_MAX_TOKENS
        ),
        "vision": lambda: chat(vision, messages=image),
        "logprobs": lambda: chat(logprobs, logprobs=True, top_logprobs=2, max_tokens=2),
        "reasoning": lambda: chat(reasoning),
        "embeddings": embeddings,
        "completions": completions,
        "developer_role": lambda: chat(accepted, messages=developer, max_tokens=2),
    }


async def probe_context_length(
    tier: TierSettings, timeout_s: float = 30.0
) -> tuple[int | None, str]:
    """The model's context window as the server's ``/v1/models`` card states it (the
    ``context_length`` a tier may declare), and where it was read; None: not stated."""
    client = _client(tier, timeout_s)  # not an upstream: ValueError, as for the others
    try:
        async with client:
            resp = await client.get("/v1/models")
        cards = resp.json().get("data") if resp.status_code < 400 else None
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return None, f"/v1/models: no answer ({type(exc).__name__})"
    if not isinstance(cards, list):
        return None, f"/v1/models: HTTP {resp.status_code}, no model list"
    card = next((c for c in cards if isinstance(c, dict) and c.get("id") == tier.model), None)
    if card is None:
        return None, f"/v1/models does not list {tier.model!r}"
    for name in CONTEXT_FIELDS:
        value = card.get(name)
        if isinstance(value, int) and value > 0:
            return value, f"/v1/models {name}"
    return None, "/v1/models does not state it"


def run(tier: TierSettings) -> list[ProbeOutcome]:
    """:func:`probe_capabilities`, for a command line."""
    return asyncio.run(probe_capabilities(tier))
