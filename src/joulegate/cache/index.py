"""The in-process vector index both stores search: exact keys and, per context, vectors.

A semantic candidate must share the request's namespace and context key, so vectors are
kept in one group per (namespace, context key) and a lookup searches its own group only.
Most groups are small (a conversation state); single-turn traffic under one system prompt
and one set of parameters, though, puts everything in one group, and that is the case the
cost bar measures (100k entries). A group past ``PREFILTER_FROM`` entries is first scored
on a 64-dimensional projection (the principal axes of the embedder's space, ``projection.npz``),
and the best ``RERANK`` of those are scored exactly: 6× less memory read per lookup. The
projection can only miss a neighbour (a lost hit), never invent one, since every hit is
decided on the exact cosine.

Before any of that, a lexical prefilter: a semantic hit needs its content words to overlap
the entry's by at least the share the calibrated score implies even at cosine 1
(``thresholds.Calibration.min_overlap``), and the guard to pass, which it never does
between texts with different numbers or a different count of negations. Each group keeps
an inverted index of its entries' content words, partitioned by those two (the entry's
*guard class*), so a question that shares too few words with every entry of its class is a
miss without being embedded at all: most misses never pay for the embedder.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from joulegate.cache.guard import Signature, refuses, signature

PROJECTION = Path(__file__).with_name("projection.npz")
PREFILTER_FROM = 4_096
RERANK = 32
MAX_CHECKS = 512  # lexical candidates looked at before the embedder is left to decide

# What two texts must share for the guard to let a hit through at all: their numbers, in
# order, and how many negations they have (``guard.refuses``).
GuardClass = tuple[tuple[str, ...], int]


def guard_class(sig: Signature) -> GuardClass:
    return (sig.numbers, sig.negations)


@dataclass
class Slot:
    """What the index holds of one entry: enough to decide a hit without the store."""

    entry_id: str
    namespace: str
    exact_key: str
    context_key: str
    text: str | None
    expires: float
    offset: float = 0.0  # the entry's learned threshold offset (thresholds.py)
    last_used: float = 0.0


@dataclass
class _Group:
    dim: int
    proj_dim: int
    ids: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    # (guard class, content word (stemmed), number of content words of the entry) -> the
    # entries of that class whose question has that word and that many words; and how many
    # entries of each class have each word.
    postings: dict[tuple[GuardClass, str, int], set[str]] = field(default_factory=dict)
    frequency: dict[tuple[GuardClass, str], int] = field(default_factory=dict)
    words: dict[str, tuple[GuardClass, frozenset[str]]] = field(default_factory=dict)
    vectors: np.ndarray = field(init=False)
    projected: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.vectors = np.empty((8, self.dim), dtype=np.float32)
        self.projected = np.empty((8, self.proj_dim), dtype=np.float32)

    def add(self, entry_id: str, vec: np.ndarray, proj: np.ndarray | None) -> None:
        n = len(self.ids)
        if n == len(self.vectors):  # grow by doubling: amortised O(1) appends
            self.vectors = np.concatenate([self.vectors, np.empty_like(self.vectors)])
            self.projected = np.concatenate([self.projected, np.empty_like(self.projected)])
        self.vectors[n] = vec
        if proj is not None:
            self.projected[n] = proj
        self.ids.append(entry_id)
        self.rows[entry_id] = n

    def remove(self, entry_id: str) -> None:
        """Swap the last row into the removed one's place."""
        i = self.rows.pop(entry_id)
        last = len(self.ids) - 1
        if i != last:
            self.vectors[i] = self.vectors[last]
            self.projected[i] = self.projected[last]
            moved = self.ids[last]
            self.ids[i] = moved
            self.rows[moved] = i
        self.ids.pop()


@dataclass(frozen=True)
class Candidate:
    slot: Slot
    similarity: float


class VectorIndex:
    """Thread-safe: lookups run in worker threads, stores in others."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        basis = np.load(PROJECTION)["basis"] if PROJECTION.exists() else None
        if basis is not None and basis.shape[0] != dim:
            basis = None  # a projection for another embedder: search exactly
        self._basis: np.ndarray | None = basis
        proj_dim = basis.shape[1] if basis is not None else 1
        self._proj_dim = proj_dim
        self._slots: dict[str, Slot] = {}
        self._exact: dict[tuple[str, str], str] = {}
        self._groups: dict[tuple[str, str], _Group] = {}
        self._lock = threading.RLock()
        # The lowest per-entry threshold offset: how far below the base any entry may hit.
        self.min_offset = 0.0

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, slot: Slot, vector: np.ndarray | None) -> None:
        with self._lock:
            if slot.entry_id in self._slots:
                return
            self._slots[slot.entry_id] = slot
            self.min_offset = min(self.min_offset, slot.offset)
            self._exact[(slot.namespace, slot.exact_key)] = slot.entry_id
            if vector is not None and slot.text is not None:
                key = (slot.namespace, slot.context_key)
                group = self._groups.get(key)
                if group is None:
                    group = self._groups[key] = _Group(self.dim, self._proj_dim)
                proj = vector @ self._basis if self._basis is not None else None
                group.add(slot.entry_id, vector, proj)
                sig = signature(slot.text)
                cls, words = guard_class(sig), sig.content
                group.words[slot.entry_id] = (cls, words)
                for w in words:
                    group.postings.setdefault((cls, w, len(words)), set()).add(slot.entry_id)
                    group.frequency[(cls, w)] = group.frequency.get((cls, w), 0) + 1

    def remove(self, entry_id: str) -> Slot | None:
        with self._lock:
            slot = self._slots.pop(entry_id, None)
            if slot is None:
                return None
            if self._exact.get((slot.namespace, slot.exact_key)) == entry_id:
                del self._exact[(slot.namespace, slot.exact_key)]
            key = (slot.namespace, slot.context_key)
            group = self._groups.get(key)
            if group is not None and entry_id in group.rows:
                group.remove(entry_id)
                cls, words = group.words.pop(entry_id, (((), 0), frozenset()))
                for w in words:
                    ids = group.postings.get((cls, w, len(words)))
                    if ids is not None:
                        ids.discard(entry_id)
                        if not ids:
                            del group.postings[(cls, w, len(words))]
                    group.frequency[(cls, w)] -= 1
                    if not group.frequency[(cls, w)]:
                        del group.frequency[(cls, w)]
                if not group.ids:
                    del self._groups[key]
            return slot

    def set_offset(self, entry_id: str, offset: float) -> None:
        slot = self._slots.get(entry_id)
        if slot is not None:
            slot.offset = offset
            self.min_offset = min(self.min_offset, offset)

    def get(self, entry_id: str) -> Slot | None:
        return self._slots.get(entry_id)

    def exact(self, namespace: str, exact_key: str) -> Slot | None:
        entry_id = self._exact.get((namespace, exact_key))
        return None if entry_id is None else self._slots.get(entry_id)

    def has_context(self, namespace: str, context_key: str) -> bool:
        return (namespace, context_key) in self._groups

    def lexically_near(
        self, namespace: str, context_key: str, text: str, min_overlap: float
    ) -> bool:
        """Whether any entry of the context shares at least ``min_overlap`` (Jaccard) of its
        content words with ``text`` and passes the guard with it: the two things a semantic
        hit needs that words alone decide. Only entries of the question's guard class can.

        Exact, with the filters of set-similarity joins: an entry of ``n`` words can only
        reach the overlap if ``m·q ≤ n ≤ q / m`` (``q``: the question's words), so only
        postings of those lengths are read; and one with ``k`` of the question's words must
        have one of its ``q - k + 1`` rarest, so only their postings are. Past
        ``MAX_CHECKS`` candidates it stops and answers True: the embedder then decides.
        """
        with self._lock:
            group = self._groups.get((namespace, context_key))
            if group is None:
                return False
            if min_overlap <= 0.0:
                return True
            sig = signature(text)
            cls, words = guard_class(sig), sig.content
            q = len(words)
            if not q:
                return True  # nothing to filter on: let the embedder decide
            need = max(1, math.ceil(min_overlap * q - 1e-9))
            lo, hi = need, math.floor(q / min_overlap + 1e-9)
            rare = sorted(words, key=lambda w: group.frequency.get((cls, w), 0))[: q - need + 1]
            seen: set[str] = set()
            for w in rare:
                for n in range(lo, hi + 1):
                    for entry_id in group.postings.get((cls, w, n), ()):
                        if entry_id in seen:
                            continue
                        seen.add(entry_id)
                        if len(seen) > MAX_CHECKS:
                            return True
                        shared = len(words & group.words[entry_id][1])
                        if shared < need or shared / (q + n - shared) < min_overlap:
                            continue
                        theirs = self._slots[entry_id].text
                        if theirs is not None and refuses(text, theirs) is None:
                            return True
            return False

    def nearest(
        self, namespace: str, context_key: str, vector: np.ndarray, k: int = 4
    ) -> list[Candidate]:
        """The ``k`` most similar entries of the same namespace and context, best first."""
        with self._lock:
            group = self._groups.get((namespace, context_key))
            if group is None:
                return []
            n = len(group.ids)
            if n > PREFILTER_FROM and self._basis is not None:
                rough = group.projected[:n] @ (vector @ self._basis)
                rows = np.argpartition(rough, -RERANK)[-RERANK:]
                sims = group.vectors[rows] @ vector
            else:
                rows = np.arange(n)
                sims = group.vectors[:n] @ vector
            order = np.argsort(sims)[::-1][:k]
            return [Candidate(self._slots[group.ids[int(rows[i])]], float(sims[i])) for i in order]

    def slots(self) -> list[Slot]:
        with self._lock:
            return list(self._slots.values())

    def least_recently_used(self, count: int) -> list[str]:
        with self._lock:
            ordered = sorted(self._slots.values(), key=lambda s: s.last_used)
            return [s.entry_id for s in ordered[:count]]

    def clear(self, namespace: str | None = None) -> list[str]:
        with self._lock:
            ids = [s.entry_id for s in self._slots.values() if namespace in (None, s.namespace)]
            for entry_id in ids:
                self.remove(entry_id)
            return ids
