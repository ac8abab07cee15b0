"""The embedded tier's ``response_format`` and ``logprobs``, on the real model.

These are the measurements behind its ``json_object``, ``json_schema`` and ``logprobs``
capabilities (docs/compatibility.md): it claims them because these pass.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from joulegate.backends import Finish, RequestRejected
from joulegate.backends.embedded import EmbeddedBackend

from backends.embedded_model import ask

# The prompts docs/compatibility.md's measurement used.
JSON_PROMPTS = [
    "Describe the sky as a JSON object.",
    "Give me a JSON object with the name and age of a fictional person.",
    "Return the capital of France as JSON.",
    "What is 2 + 2? Answer in JSON.",
    "Return a JSON object with keys city and country for Tokyo.",
]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def _ask(backend: EmbeddedBackend, prompt: str, **extra: Any) -> tuple[str, Finish]:
    return ask(backend, prompt, max_tokens=128, extra=extra)


@pytest.mark.parametrize("prompt", JSON_PROMPTS)
def test_json_object_answers_are_json_objects(
    embedded_backend: EmbeddedBackend, prompt: str
) -> None:
    text, finish = _ask(embedded_backend, prompt, response_format={"type": "json_object"})
    assert finish.finish_reason == "stop", text
    assert isinstance(json.loads(text), dict), text


@pytest.mark.parametrize("prompt", JSON_PROMPTS[:3])
def test_json_schema_answers_match_the_schema(
    embedded_backend: EmbeddedBackend, prompt: str
) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}}
    text, _ = _ask(embedded_backend, prompt, response_format=fmt)
    value = json.loads(text)
    assert set(value) == {"answer"} and isinstance(value["answer"], str), text


def test_a_schema_without_its_schema_is_refused(embedded_backend: EmbeddedBackend) -> None:
    with pytest.raises(RequestRejected):
        _ask(embedded_backend, "hi", response_format={"type": "json_schema", "json_schema": {}})


def test_logprobs_cover_the_answer_with_its_top_alternatives(
    embedded_backend: EmbeddedBackend,
) -> None:
    text, finish = _ask(embedded_backend, "Name a primary colour.", logprobs=True, top_logprobs=3)
    assert finish.choice_extra is not None
    content = finish.choice_extra["logprobs"]["content"]
    # The tokens spell the answer (the first one with the space the chat frame leaves).
    assert "".join(t["token"] for t in content).strip() == text
    for t in content:
        assert t["logprob"] <= 0 and bytes(t["bytes"]).decode() == t["token"]
        alts = t["top_logprobs"]
        assert len(alts) == 3 and alts == sorted(alts, key=lambda a: -a["logprob"])
        # Greedy sampling (temperature 0) takes the most likely token.
        assert alts[0]["token"] == t["token"]
        assert math.isclose(alts[0]["logprob"], t["logprob"], abs_tol=1e-6)
    assert sum(math.exp(a["logprob"]) for a in content[0]["top_logprobs"]) <= 1 + 1e-6


def test_logprobs_without_alternatives(embedded_backend: EmbeddedBackend) -> None:
    _, finish = _ask(embedded_backend, "Name a primary colour.", logprobs=True)
    assert finish.choice_extra is not None
    content = finish.choice_extra["logprobs"]["content"]
    assert content and all(t["top_logprobs"] == [] for t in content)


def test_out_of_range_top_logprobs_is_refused(embedded_backend: EmbeddedBackend) -> None:
    with pytest.raises(RequestRejected):
        _ask(embedded_backend, "hi", logprobs=True, top_logprobs=21)
