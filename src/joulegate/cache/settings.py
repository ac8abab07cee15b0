"""``[cache]``: the response cache (docs/cache.md).

Composed into the gateway's settings (``joulegate.config``) as ``cache``. It imports
nothing from joulegate, so ``config`` can compose it without depending on the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["CacheMode", "CacheSettings"]

# off: never read or write. exact: the same request (every field that changes the answer)
# gets the same answer. semantic: also the same question asked in other words, in the same
# conversation state, when the per-entry threshold and the guard allow it.
CacheMode = Literal["off", "exact", "semantic"]


class CacheSettings(BaseModel):
    # The deployment's default; a request may lower it (``"joulegate": {"cache": "off"}``)
    # or, where ``allow_request_semantic``, raise exact to semantic.
    mode: CacheMode = "exact"
    # Whether a request may turn the semantic cache on for itself when ``mode`` is exact.
    allow_request_semantic: bool = True
    # "sqlite": embedded, zero set-up: vectors in this process, persisted to
    # ``<data_dir>/cache.db`` (or ``sqlite_path``). "redis": shared by every replica that
    # names the same ``redis_url``.
    store: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: Path | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Entries are namespaced per API key; true: one cache for every key of the deployment.
    shared: bool = False
    # Entries live this long after they were stored, then are never served again.
    ttl_s: int = Field(default=7 * 86_400, ge=1)
    # The most entries kept; past it the least recently used are evicted.
    max_entries: int = Field(default=100_000, ge=1)
    # Answers longer than this (characters of text and tool calls) are not stored.
    max_answer_chars: int = Field(default=32_768, ge=1)
    # Store answers cut at max_tokens (finish_reason "length") too. Off: a truncated answer
    # is not the answer to the question, and would be served as if it were.
    store_truncated: bool = False
    # -- semantic ------------------------------------------------------------------------
    # The largest share of semantic hits that may be wrong (served an answer to a question
    # that means something else); per-entry thresholds are set to keep below it.
    max_error_rate: float = Field(default=0.01, gt=0.0, lt=0.5)
    # Share of would-be hits that are answered by the model instead, to check whether the
    # cached answer would have been right (vCache's exploration); this is what the
    # per-entry thresholds and the estimated false-hit rate learn from.
    explore_rate: float = Field(default=0.02, ge=0.0, le=1.0)
    # "minilm": all-MiniLM-L6-v2 (int8 ONNX, offline). "hashed": character n-grams, no
    # model (spelling, not meaning: for tests and machines that cannot load the model).
    embedder: Literal["minilm", "hashed"] = "minilm"
    # Last user turns longer than this (characters) are only cached exactly.
    max_semantic_chars: int = Field(default=2_000, ge=1)
    # -- per key (by key name or key id) ----------------------------------------------------
    # A mode for some keys other than ``mode``, e.g. ``{ "team-search" = "semantic" }``.
    keys: dict[str, CacheMode] = Field(default_factory=dict)
    # Keys whose requests are never stored (their answers may still be served from their
    # own namespace). A request can ask the same for itself: ``"joulegate": {"no_store": true}``.
    no_store_keys: list[str] = Field(default_factory=list)
