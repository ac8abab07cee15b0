"""What the embedded tier does with ``response_format`` and ``logprobs``: the llama.cpp
features behind its ``json_object``, ``json_schema`` and ``logprobs`` capabilities.

**JSON.** llama.cpp's grammar-constrained sampling only ever samples tokens that keep the
output valid under a grammar: the JSON grammar for ``json_object``, one compiled from the
schema for ``json_schema``. Measured on the 270M base model (docs/compatibility.md): 10
of 10 answers to ``json_object`` prompts were valid JSON objects, and schema answers
matched their schema. A JSON answer can still be cut by ``max_tokens`` (then
``finish_reason`` is ``"length"``), as with OpenAI.

**Log-probs.** ``SampledLogprobs`` records each sampled token's id and log-prob, and its
``top_logprobs`` alternatives, from the logits the token was drawn from (the model's
distribution, before temperature and penalties). They become OpenAI's ``logprobs`` object
for the tokens of the answer's text.
"""

from __future__ import annotations

import json
from typing import Any

from joulegate.backends.base import ChatParams, RequestRejected

__all__ = ["MAX_TOP_LOGPROBS", "grammar_for", "logprobs_object", "wanted_logprobs"]

# OpenAI's own bound on top_logprobs.
MAX_TOP_LOGPROBS = 20


def grammar_for(params: ChatParams) -> Any | None:
    """The llama.cpp grammar ``response_format`` asks for; None for plain text.

    Raises ``RequestRejected`` for a schema llama.cpp cannot turn into a grammar.
    """
    fmt = params.extra.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("json_object", "json_schema"):
        return None
    from llama_cpp import LlamaGrammar
    from llama_cpp.llama_grammar import JSON_GBNF

    if kind == "json_object":
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise RequestRejected("response_format json_schema needs json_schema.schema, an object")
    try:
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as exc:  # llama.cpp's converter raises plain errors on what it lacks
        raise RequestRejected(
            f"the embedded tier cannot enforce this JSON schema ({type(exc).__name__}: "
            f"{str(exc)[:200]}); name a tier that can, or simplify the schema"
        ) from None


def wanted_logprobs(params: ChatParams) -> int | None:
    """How many alternatives per token the client asked for (0: just the token's own
    log-prob), or None when it asked for no ``logprobs``."""
    if not params.extra.get("logprobs"):
        return None
    top = params.extra.get("top_logprobs") or 0
    if not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS:
        raise RequestRejected(f"top_logprobs must be an integer from 0 to {MAX_TOP_LOGPROBS}")
    return top


def logprobs_object(
    llm: Any,
    tokens: list[int],
    values: tuple[float, ...],
    tops: list[list[tuple[int, float]]],
    raw_text: str,
) -> dict[str, Any]:
    """OpenAI's ``logprobs`` object for the tokens that make up ``raw_text``.

    ``raw_text`` is everything llama.cpp returned, before the gateway trims the leading
    space the chat frame leaves; tokens past it (a stop sequence, end of text) are not
    part of the answer and are left out. Token strings are the model's own pieces, so the
    first may start with the space the answer's text does not.
    """
    limit = len(raw_text.encode("utf-8"))
    content: list[dict[str, Any]] = []
    at = 0
    for i, token in enumerate(tokens[: len(values)]):
        piece = _piece(llm, token)
        if at >= limit or not piece:
            break
        at += len(piece)
        entry = _entry(piece, values[i])
        if i < len(tops):
            entry["top_logprobs"] = [_entry(_piece(llm, t), lp) for t, lp in tops[i]]
        else:
            entry["top_logprobs"] = []
        content.append(entry)
    return {"content": content, "refusal": None}


def _piece(llm: Any, token: int) -> bytes:
    piece: bytes = llm.detokenize([token])
    return piece


def _entry(piece: bytes, logprob: float) -> dict[str, Any]:
    return {"token": piece.decode("utf-8", "replace"), "logprob": logprob, "bytes": list(piece)}
