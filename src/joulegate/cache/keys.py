"""What a cache entry is found by: an exact key, a context key, and the question's text.

A request's answer depends on more than its last question. The **exact key** hashes every
field that can change the answer: the tier asked for (or ``auto`` and its quality target),
every message with the system prompt, ``temperature``, ``top_p``, ``seed``, ``stop``,
``max_tokens``, ``tools``, ``response_format`` and every field passed through to an
upstream. Only fields that shape the delivery, not the answer, are left out
(``stream``, ``stream_options``, the cache options themselves).

The **context key** hashes the same minus the text of the last user turn: the system
prompt, the prior turns and the parameters. A semantic hit needs an identical context key,
so the same question after a different history, under a different system prompt or with
other parameters never meets an entry, whatever the embedder thinks of the words (the two
failures GPTCache and LiteLLM users report). Only the last user turn is compared by meaning.

Both are SHA-256 over canonical JSON (sorted keys, no spaces, UTF-8): the same request
always gives the same key in every replica and every Python version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

VERSION = 1  # bump to orphan every stored entry when the keying changes

# Fields that change how an answer is delivered, not what it says.
DELIVERY = frozenset({"stream", "stream_options", "n"})
# joulegate's own options that are about the cache, not the answer.
CACHE_OPTIONS = frozenset({"cache", "no_store"})


@dataclass(frozen=True)
class CacheKeys:
    exact: str
    context: str
    # The last user turn, when it is plain text and may be compared by meaning; None: the
    # request is cached exactly only (a tool result last, images, a text completion).
    text: str | None


def canonical_json(value: Any) -> bytes:
    """The one byte string for ``value``: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _answer_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The request without its delivery fields and cache options, nulls dropped."""
    out = {k: v for k, v in body.items() if k not in DELIVERY and v is not None}
    options = out.get("joulegate")
    if isinstance(options, dict):
        kept = {k: v for k, v in options.items() if k not in CACHE_OPTIONS and v is not None}
        if kept:
            out["joulegate"] = kept
        else:
            out.pop("joulegate")
    if isinstance(out.get("stop"), str):  # "x" and ["x"] ask for the same thing
        out["stop"] = [out["stop"]]
    if "max_completion_tokens" in out:  # the newer name for the same bound wins
        out["max_tokens"] = out.pop("max_completion_tokens")
    return out


def _plain_text(content: Any) -> str | None:
    """A message's text when it is only text (a string, or text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                return None
            texts.append(str(part.get("text") or ""))
        return "\n".join(texts)
    return None


def cache_keys(model: str, body: dict[str, Any]) -> CacheKeys:
    """The keys of one request. ``model`` is the tier's name, or ``auto``: two ids of the
    same tier share entries. ``body`` is the request as JSON (``model_dump``)."""
    fields = _answer_fields(body)
    fields["model"] = model
    exact = _digest({"v": VERSION, "request": fields})
    messages = list(fields.get("messages") or [])
    last = messages[-1] if messages else None
    text = None
    if isinstance(last, dict) and last.get("role") == "user" and "prompt" not in fields:
        text = _plain_text(last.get("content"))
    if text is None or not isinstance(last, dict):
        # Nothing to compare by meaning: the context is the whole request.
        return CacheKeys(exact, exact, None)
    frame = {k: v for k, v in last.items() if k != "content"}  # role, name
    context = _digest({"v": VERSION, "context": {**fields, "messages": [*messages[:-1], frame]}})
    return CacheKeys(exact, context, text)
