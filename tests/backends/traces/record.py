"""Record llama-cpp-python's OpenAI server answering the golden-trace requests.

    python tests/backends/traces/record.py

Starts ``python -m llama_cpp.server`` on the embedded GGUF (as ``tests/backends/conftest.py``
does), sends each request in :data:`SCENARIOS` once streamed and once not, and writes the
raw response bodies, byte for byte, to ``<name>.sse`` and ``<name>.json`` beside this file,
with the request in ``<name>.request.json``. ``replay_upstream.py`` serves them back, so the
passthrough tests compare the gateway against exactly what a real upstream sent, without a
model running. Re-record after upgrading llama-cpp-python.

``reasoning.*`` is not recorded here: llama-cpp-python's server has no reasoning models'
``reasoning_content``. It is written by :func:`reasoning_trace` in the format of DeepSeek's
API documentation (``deepseek-reasoner``): reasoning deltas, then content deltas, then a
usage chunk with ``completion_tokens_details.reasoning_tokens``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

from joulegate.backends._request_body import tier_messages

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/, for backends.upstreams

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ASK_WEATHER = {"role": "user", "content": "What is the weather in Paris?"}

SCENARIOS: dict[str, dict[str, Any]] = {
    "tools_forced": {
        "messages": [ASK_WEATHER],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 32,
        "temperature": 0.0,
    },
    "tool_result": {
        "messages": [
            ASK_WEATHER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_0", "content": "22 C and sunny"},
        ],
        "tools": [WEATHER_TOOL],
        "max_tokens": 24,
        "temperature": 0.0,
    },
    "logprobs": {
        "messages": [{"role": "user", "content": "Name a primary colour."}],
        "logprobs": True,
        "top_logprobs": 3,
        "max_tokens": 8,
        "temperature": 0.0,
    },
    "json_object": {
        "messages": [{"role": "user", "content": "Describe the sky as a JSON object."}],
        "response_format": {"type": "json_object"},
        "max_tokens": 24,
        "temperature": 0.0,
    },
}


def record(url: str, model: str) -> None:
    for name, request in SCENARIOS.items():
        body = {"model": model, **request}
        (HERE / f"{name}.request.json").write_text(json.dumps(body, indent=2) + "\n")
        # As the gateway forwards it (backends/_request_body.py, tier_messages).
        body = {**body, "messages": tier_messages(body["messages"], frozenset())}
        plain = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
        plain.raise_for_status()
        (HERE / f"{name}.json").write_bytes(plain.content)
        streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=streamed, timeout=120) as resp:
            resp.raise_for_status()
            (HERE / f"{name}.sse").write_bytes(resp.read())
        print(f"recorded {name}")


def record_interrupted(url: str, model: str) -> None:
    """llama-cpp-python's server cutting a stream short: ``interrupted.sse``.

    With ``interrupt_requests`` (its default), a stream that sees another request waiting
    sends ``[DONE]`` after its current chunk. So: one request generating (``busy``), a
    stream queued behind it (the one recorded), and a third queued behind that; when the
    stream gets the model, its first chunk is followed by ``[DONE]``, with no content and
    no finish reason. This is what 5 of 6 concurrent requests got in issue 13.
    """
    import threading
    import time

    ask = {"model": model, "messages": [{"role": "user", "content": "Tell me about the sea."}]}
    busy = threading.Thread(
        target=lambda: httpx.post(
            f"{url}/v1/chat/completions", json={**ask, "max_tokens": 64}, timeout=120
        )
    )
    busy.start()
    time.sleep(0.5)
    raw: list[bytes] = []

    def stream() -> None:
        body = {**ask, "max_tokens": 64, "stream": True}
        got = b""
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as r:
            try:
                for part in r.iter_raw():
                    got += part
            except httpx.HTTPError:
                pass  # it may also drop the connection after [DONE]
        raw.append(got)

    streamed = threading.Thread(target=stream)
    streamed.start()
    time.sleep(0.5)
    third = threading.Thread(
        target=lambda: httpx.post(
            f"{url}/v1/chat/completions", json={**ask, "max_tokens": 4}, timeout=120
        )
    )
    third.start()
    for t in (busy, streamed, third):
        t.join()
    events = [e for e in raw[0].split(b"\r\n\r\n") if e.strip()]
    if b'"finish_reason": "' in raw[0] or len(events) > 3:
        raise RuntimeError(f"the stream was not interrupted: {raw[0][:300]!r}")
    (HERE / "interrupted.sse").write_bytes(raw[0])
    print("recorded interrupted")


def reasoning_trace() -> None:
    """DeepSeek-style reasoning answer, as documented for ``deepseek-reasoner``."""
    head = {
        "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e",
        "object": "chat.completion.chunk",
        "created": 1738000000,
        "model": "deepseek-reasoner",
        "system_fingerprint": "fp_7e73fd9a08",
    }
    events: list[dict[str, Any]] = []

    def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
        events.append(
            {
                **head,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
        )

    chunk({"role": "assistant", "content": None, "reasoning_content": ""})
    thinking = ["Primary", " colours", " are", " red,", " yellow", " and", " blue."]
    thinking += [" Pick", " one."]
    for part in thinking:
        chunk({"content": None, "reasoning_content": part})
    for part in ["Red", "."]:
        chunk({"content": part, "reasoning_content": None})
    chunk({"content": "", "reasoning_content": None}, "stop")
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 11,
        "total_tokens": 23,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 9},
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 12,
    }
    events.append({**head, "choices": [], "usage": usage})
    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    (HERE / "reasoning.sse").write_text(sse)
    message = {
        "role": "assistant",
        "content": "Red.",
        "reasoning_content": "".join(thinking),
    }
    whole = {
        **head,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": usage,
    }
    (HERE / "reasoning.json").write_text(json.dumps(whole))
    request = {
        "model": "deepseek-reasoner",
        "messages": [{"role": "user", "content": "Name a primary colour."}],
    }
    (HERE / "reasoning.request.json").write_text(json.dumps(request, indent=2) + "\n")
    print("wrote reasoning")


def main() -> None:
    from backends.upstreams import LLAMA_MODEL_ALIAS, running_llama_server

    with running_llama_server("--seed", "7") as url:
        record(url, LLAMA_MODEL_ALIAS)
        record_interrupted(url, LLAMA_MODEL_ALIAS)
    reasoning_trace()


if __name__ == "__main__":
    main()
