"""Embeddings upstream (``/v1/embeddings``): the body sent, and reading the answer.

The client's ``encoding_format`` is passed on, so an upstream that speaks base64 sends the
smaller form; one that ignores it sends floats, and the server encodes them (see
``server/embeddings.py``). The tier's ``extra_body`` is not merged in: it holds sampling
settings for generations, which an embeddings endpoint may reject.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard

from joulegate.backends._response import estimate_tokens
from joulegate.backends.base import Embeddings, EmbedParams
from joulegate.backends.sse import MalformedResponse

__all__ = ["EMBEDDINGS_PATH", "embeddings_body", "read_embeddings"]

EMBEDDINGS_PATH = "/v1/embeddings"


def embeddings_body(params: EmbedParams, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        **params.extra,
        "model": model,
        "input": params.inputs,
        "encoding_format": params.encoding_format,
    }
    if params.dimensions is not None:
        body["dimensions"] = params.dimensions
    return body


def read_embeddings(raw: bytes, tier: str, params: EmbedParams) -> Embeddings:
    """The vectors in input order, and the upstream's token count (estimated if absent)."""
    try:
        obj = json.loads(raw)
    except ValueError:
        obj = None
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, list) or len(data) != len(params.inputs):
        raise MalformedResponse(
            f"tier {tier!r} sent an embeddings answer without one vector per input"
        )
    items = sorted(data, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
    vectors: list[list[float] | str] = []
    for item in items:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not (isinstance(vector, str) or _numbers(vector)):
            # llama-cpp-python's server, for one, sends one vector per token for a model
            # without a pooling type (Gemma 3): a matrix no client expects.
            raise MalformedResponse(
                f"tier {tier!r} sent an embedding that is not one vector of numbers"
            )
        vectors.append(vector)
    usage = obj.get("usage") if isinstance(obj, dict) else None
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if not isinstance(tokens, int):
        tokens = estimate_tokens(sum(len(text) for text in params.inputs))
    return Embeddings(vectors, tokens)


def _numbers(vector: Any) -> TypeGuard[list[float]]:
    return isinstance(vector, list) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in vector
    )
