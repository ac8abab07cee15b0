"""The response cache as the request path sees it: ``probe``, ``lookup``, ``remember``.

``ChatService.create`` asks ``probe`` before anything is planned or routed; a request the
cache may serve gets a :class:`Probe` (its namespace, keys and mode). ``lookup`` runs in a
worker thread (the embedder and the store must not stall the event loop) and returns a
:class:`Hit`, or ``None`` with the probe primed for storing: the vector it computed, and
whether the model's answer is to be compared with a near-hit's (exploration,
``thresholds.py``). Once the answer is settled, ``remember`` stores it in the background,
if it is complete and the request and its key allow storing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from joulegate.cache import guard
from joulegate.cache.embedder import Embedder, load_embedder
from joulegate.cache.entry import Entry, Store
from joulegate.cache.keys import CacheKeys, cache_keys
from joulegate.cache.settings import CacheMode, CacheSettings
from joulegate.cache.stats import Counters, summarize
from joulegate.cache.thresholds import Calibration, decide, load_calibration

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"  # requests without a key (auth off)
SHARED = "shared"  # every key, with ``[cache] shared = true``
_ORDER: dict[str, int] = {"off": 0, "exact": 1, "semantic": 2}
# Answers whose texts embed at least this close (and pass the guard) agree.
AGREE_COSINE = 0.9
_EXPIRE_EVERY_S = 60.0
_PAUSE_S = 30.0  # how long a failing store is left alone


class KeyLike(Protocol):
    """What the cache reads of an API key (``joulegate.ledger.KeyInfo`` fits)."""

    @property
    def key_id(self) -> str: ...
    @property
    def name(self) -> str: ...


@dataclass
class Probe:
    """One request's way through the cache."""

    namespace: str
    keys: CacheKeys
    mode: CacheMode  # "exact" or "semantic"
    store: bool  # whether its answer may be stored
    stream: bool
    vector: np.ndarray | None = None  # the last user turn, once embedded
    # A near-hit being checked: the entry, the score it was seen at.
    explore: tuple[str, float] | None = None


@dataclass(frozen=True)
class Hit:
    entry: Entry
    kind: Literal["exact", "semantic"]
    similarity: float | None  # the cosine of the two last user turns (semantic)
    p_error: float  # the estimated chance that this answer is wrong for this request
    lookup_ms: float  # wall time of the lookup
    cpu_s: float  # CPU time of the lookup (embedding included): what its energy is from

    def route(self) -> dict[str, Any]:
        """``joulegate.route.cache`` in the response."""
        out: dict[str, Any] = {"kind": self.kind, "entry": self.entry.entry_id[:12]}
        if self.similarity is not None:
            out["similarity"] = round(self.similarity, 4)
            out["estimated_error"] = round(self.p_error, 5)
        out["lookup_ms"] = round(self.lookup_ms, 3)
        return out


class ResponseCache:
    def __init__(
        self, settings: CacheSettings, store: Store, embedder: Embedder | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._rng = random.Random()
        self._counters = Counters()
        self._counters_lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_expiry = time.monotonic()
        self._paused_until = 0.0
        self._opened = False
        self._semantic_configured = settings.mode == "semantic" or "semantic" in set(
            settings.keys.values()
        )

    @classmethod
    def from_settings(cls, settings: CacheSettings, data_dir: Path) -> ResponseCache | None:
        """The configured cache; None when it is off for everyone."""
        if settings.mode == "off" and not any(m != "off" for m in settings.keys.values()):
            return None
        return cls(settings, build_store(settings, data_dir))

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.open)
        except Exception as exc:  # the gateway serves without the cache until it answers
            self._pause(exc)

    def open(self) -> None:
        """Open the store (read its entries into the index) unless it is open already."""
        if not self._opened:
            self.store.open()
            self._opened = True

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._flush_counters)
        await asyncio.to_thread(self.store.close)

    @property
    def embedder(self) -> Embedder:
        """Loaded on first use: a deployment that never matches by meaning never loads it."""
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    self._embedder = load_embedder(self.settings.embedder)
        return self._embedder

    @property
    def calibration(self) -> Calibration:
        return load_calibration(self.embedder.name)

    # -- the request path -------------------------------------------------------------------

    def probe(
        self,
        model: str,
        body: dict[str, Any],
        key: KeyLike | None,
        *,
        requested: str | None = None,
        no_store: bool = False,
    ) -> Probe | None:
        """Whether and how the cache takes part in this request (None: not at all).

        ``model`` is the tier's name or ``auto``; ``body`` the request as JSON;
        ``requested`` the request's own ``joulegate.cache`` option.
        """
        mode = self.mode_for(key, requested)
        if mode == "off":
            return None
        namespace = SHARED if self.settings.shared else (key.key_id if key else ANONYMOUS)
        store = not (no_store or self._key_no_store(key))
        stream = bool(body.get("stream"))
        return Probe(namespace, cache_keys(model, body), mode, store, stream)

    def mode_for(self, key: KeyLike | None, requested: str | None) -> CacheMode:
        """The deployment's (or the key's) mode, lowered by the request, or raised from
        exact to semantic where ``allow_request_semantic``."""
        s = self.settings
        base: CacheMode = s.mode
        if key is not None:
            base = s.keys.get(key.name, s.keys.get(key.key_id, base))
        if base == "off" or requested is None:
            return base
        if requested == "semantic" and base == "exact" and s.allow_request_semantic:
            return "semantic"
        return requested if _ORDER[requested] < _ORDER[base] else base  # type: ignore[return-value]

    def _key_no_store(self, key: KeyLike | None) -> bool:
        if key is None:
            return False
        if key.name in self.settings.no_store_keys or key.key_id in self.settings.no_store_keys:
            return True
        # Keys that opt out of learning from their traffic (``keys create --no-learn``: a
        # ``KeyInfo`` with ``learn = False``) opt out of the cache's copy too.
        return getattr(key, "learn", True) is False

    async def lookup(self, probe: Probe) -> Hit | None:
        """The cached answer, or None. A store that fails (Redis down, a locked file) is a
        miss, and is left alone for ``_PAUSE_S``: the cache must never fail a request."""
        if time.monotonic() < self._paused_until:
            return None
        try:
            return await asyncio.to_thread(self._lookup, probe)
        except Exception as exc:
            self._pause(exc)
            return None

    def _pause(self, exc: BaseException) -> None:
        self._paused_until = time.monotonic() + _PAUSE_S
        log.warning("cache: the store failed (%s); not using it for %.0f s", exc, _PAUSE_S)

    def _lookup(self, probe: Probe) -> Hit | None:
        t0, c0 = time.perf_counter(), time.thread_time()
        self.open()  # a store that was down at start-up is opened when it is back
        self.store.sync()
        now = time.time()
        ns, keys = probe.namespace, probe.keys
        self._count(ns, "lookups")
        slot = self.store.index.exact(ns, keys.exact)
        if slot is not None and slot.expires > now:
            entry = self.store.fetch(slot.entry_id)
            if entry is not None:
                self._count(ns, "exact_hits")
                return self._hit(entry, "exact", None, 0.0, t0, c0)
        if not self._matches_by_meaning(probe):
            return None
        assert keys.text is not None
        cal = self.calibration
        s = self.settings
        base = cal.base_threshold(s.max_error_rate)
        lowest = base + min(0.0, self.store.index.min_offset)
        if not self.store.index.lexically_near(
            ns, keys.context, keys.text, cal.min_overlap(lowest)
        ):
            return None  # no entry shares enough words to reach a threshold: not embedded
        probe.vector = self.embedder.embed(keys.text)
        for cand in self.store.index.nearest(ns, keys.context, probe.vector, k=4):
            if cand.similarity < cal.min_cosine:
                break
            slot = cand.slot
            if slot.expires <= now or slot.text is None:
                continue
            if guard.refuses(keys.text, slot.text) is not None:
                continue
            score = cal.score(cand.similarity, guard.overlap(keys.text, slot.text))
            kind = decide(score, base, slot.offset, s.explore_rate, self._rng)
            if kind == "miss":
                continue
            if kind == "explore":
                probe.explore = (slot.entry_id, score)
                self._count(ns, "explored")
                return None
            entry = self.store.fetch(slot.entry_id)
            if entry is None:
                continue
            p_error = cal.error(score)
            self._count(ns, "semantic_hits")
            self._count(ns, "est_false_hits", p_error)
            return self._hit(entry, "semantic", cand.similarity, p_error, t0, c0)
        return None

    def _matches_by_meaning(self, probe: Probe) -> bool:
        """Semantic mode, a plain-text last turn, and entries in the same context: only then
        is the question embedded on the request path."""
        text = probe.keys.text
        return (
            probe.mode == "semantic"
            and text is not None
            and len(text) <= self.settings.max_semantic_chars
            and self.store.index.has_context(probe.namespace, probe.keys.context)
        )

    def _hit(
        self,
        entry: Entry,
        kind: Literal["exact", "semantic"],
        similarity: float | None,
        p_error: float,
        t0: float,
        c0: float,
    ) -> Hit:
        self.store.touch(entry.entry_id, time.time())
        self._flush_counters()  # so that `joulegate cache stats` sees hits as they happen
        return Hit(
            entry,
            kind,
            similarity,
            p_error,
            (time.perf_counter() - t0) * 1000.0,
            time.thread_time() - c0,
        )

    def _count(self, namespace: str, name: str, value: float = 1.0) -> None:
        with self._counters_lock:
            self._counters.add(namespace, name, value)

    # -- storing ----------------------------------------------------------------------------

    def storable(self, answer: dict[str, Any], status: str) -> bool:
        """Only complete, successful, non-empty answers: no errors, no cut streams, no
        ``finish_reason = "length"`` unless ``store_truncated``, nothing oversized."""
        if status != "ok":
            return False
        finish = answer.get("finish_reason")
        if finish is None or finish in ("error", "cancelled", "content_filter"):
            return False
        if finish == "length" and not self.settings.store_truncated:
            return False
        text = answer.get("text") or ""
        extra = answer.get("message_extra") or {}
        if not text.strip() and not extra.get("tool_calls"):
            return False  # an empty answer is a failure that looks like success
        return len(text) + len(str(extra)) <= self.settings.max_answer_chars

    def remember(self, probe: Probe, answer: dict[str, Any], origin: dict[str, Any]) -> None:
        """Store ``answer`` (and learn from an explored near-hit) after the response; the
        work runs in a background thread, tracked so ``close`` waits for it."""
        explore = probe.explore
        if (not probe.store and explore is None) or time.monotonic() < self._paused_until:
            return
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self._remember, probe, answer, origin)
        )
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            self._pause(exc)

    def _remember(self, probe: Probe, answer: dict[str, Any], origin: dict[str, Any]) -> None:
        if probe.explore is not None:
            self._learn(probe, answer)
        if probe.store:
            self._store(probe, answer, origin)
        if time.monotonic() - self._last_expiry > _EXPIRE_EVERY_S:
            self._last_expiry = time.monotonic()
            self.store.remove_expired(time.time())
        self._flush_counters()

    def _store(self, probe: Probe, answer: dict[str, Any], origin: dict[str, Any]) -> None:
        keys = probe.keys
        vector = probe.vector
        semantic = probe.mode == "semantic" or self._semantic_configured
        text = keys.text
        if text is not None and len(text) > self.settings.max_semantic_chars:
            text = None
        if vector is None and semantic and text is not None:
            vector = self.embedder.embed(text)
        now = time.time()
        entry = Entry(
            Entry.new_id(),
            probe.namespace,
            keys.exact,
            keys.context,
            text if vector is not None else None,
            answer,
            origin,
            now,
            now + self.settings.ttl_s,
        )
        if self.store.put(entry, vector if entry.text is not None else None):
            self._count(probe.namespace, "stored")

    def _learn(self, probe: Probe, answer: dict[str, Any]) -> None:
        assert probe.explore is not None
        entry_id, score = probe.explore
        cached = self.store.fetch(entry_id)
        if cached is None:
            return
        agreed = self.agree(cached.answer, answer)
        rate = self.settings.max_error_rate
        cached.threshold.learn(score, agreed, self.calibration.base_threshold(rate), rate)
        self.store.save_threshold(entry_id, cached.threshold)
        if not agreed:
            self._count(probe.namespace, "explored_disagreed")
        log.info(
            "cache: explored entry %s at score %.2f: answers %s; its threshold offset is %.2f",
            entry_id[:12],
            score,
            "agree" if agreed else "disagree",
            cached.threshold.offset,
        )

    def agree(self, cached: dict[str, Any], fresh: dict[str, Any]) -> bool:
        """Whether the model's fresh answer says what the cached one says: the same text,
        or texts that embed close and pass the guard (numbers, negation, names), and the
        same tool calls."""
        if (cached.get("message_extra") or {}).get("tool_calls") != (
            fresh.get("message_extra") or {}
        ).get("tool_calls"):
            return False
        a, b = (" ".join(str(x.get("text") or "").split()).lower() for x in (cached, fresh))
        if a == b:
            return True
        if not a or not b or guard.refuses(a, b) is not None:
            return False
        return float(self.embedder.embed(a) @ self.embedder.embed(b)) >= AGREE_COSINE

    # -- administration ---------------------------------------------------------------------

    def _flush_counters(self) -> None:
        with self._counters_lock:
            pending, self._counters = self._counters, Counters()
        for ns, counters in pending.by_namespace.items():
            self.store.add_stats(ns, counters)

    def stats(self) -> dict[str, Any]:
        self._flush_counters()
        return summarize(self.store.stats(), self.store.counts())

    def clear(self, namespace: str | None = None) -> int:
        return self.store.clear(namespace)


def build_store(settings: CacheSettings, data_dir: Path) -> Store:
    """The configured store, not yet opened (``joulegate cache`` reads it without loading
    every vector)."""
    dim = 1024 if settings.embedder == "hashed" else 384
    if settings.store == "redis":
        from joulegate.cache.redis_store import RedisStore

        return RedisStore(settings.redis_url, dim, settings.max_entries, settings.ttl_s)
    from joulegate.cache.sqlite_store import SQLiteStore

    path = settings.sqlite_path or data_dir / "cache.db"
    return SQLiteStore(path, dim, settings.max_entries)
