"""One cached answer, and the interface both stores give it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from joulegate.cache.index import Slot, VectorIndex
from joulegate.cache.thresholds import EntryThreshold


@dataclass
class Entry:
    entry_id: str
    namespace: str
    exact_key: str
    context_key: str
    text: str | None  # the last user turn, when it may be matched by meaning
    # The answer as the client got it: text, finish_reason, usage and the upstream's extra
    # fields (tool_calls, logprobs, ...), enough to rebuild a body or replay a stream.
    answer: dict[str, Any]
    # Who made it and what it cost then: tier, model, energy_j, cost_usd, co2e_g.
    origin: dict[str, Any]
    created: float
    expires: float
    threshold: EntryThreshold = field(default_factory=EntryThreshold)
    hits: int = 0
    last_used: float = 0.0

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def slot(self) -> Slot:
        return Slot(
            self.entry_id,
            self.namespace,
            self.exact_key,
            self.context_key,
            self.text,
            self.expires,
            self.threshold.offset,
            self.last_used or self.created,
        )

    def answer_json(self) -> str:
        return json.dumps(self.answer, separators=(",", ":"))

    def origin_json(self) -> str:
        return json.dumps(self.origin, separators=(",", ":"))


class Store(Protocol):
    """Where entries live. Every method is synchronous and thread-safe: the cache calls
    them from worker threads, so the event loop never waits on a disk or a socket."""

    index: VectorIndex

    def open(self) -> None: ...
    def sync(self) -> None: ...
    def fetch(self, entry_id: str) -> Entry | None: ...
    def put(self, entry: Entry, vector: np.ndarray | None) -> bool: ...
    def touch(self, entry_id: str, now: float) -> None: ...
    def save_threshold(self, entry_id: str, threshold: EntryThreshold) -> None: ...
    def remove_expired(self, now: float) -> int: ...
    def clear(self, namespace: str | None = None) -> int: ...
    def add_stats(self, namespace: str, counters: dict[str, float]) -> None: ...
    def stats(self) -> dict[str, dict[str, float]]: ...
    def counts(self) -> dict[str, int]: ...
    def close(self) -> None: ...


def vector_bytes(vector: np.ndarray | None) -> bytes | None:
    return None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()


def vector_from(blob: bytes | None) -> np.ndarray | None:
    return None if not blob else np.frombuffer(blob, dtype=np.float32).copy()
