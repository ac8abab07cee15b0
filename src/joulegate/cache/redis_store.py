"""The shared store: entries in Redis, searched by every replica in its own memory.

Redis 7.0 as shipped by Debian has no vector search, and a round trip per candidate would
not fit the lookup budget anyway. So each replica keeps the keys and vectors of every live
entry in its in-process index (``index.py``) and follows the others' writes through a Redis
stream, the change log: before a lookup it reads what was logged since its last read (one
``XREAD``, usually empty), and only a hit reads the entry's answer from Redis.

Writes are one Lua script each, so they are atomic across replicas: an entry is created
only if no entry has its (namespace, exact key), which is what keeps two replicas that
answer the same request at once from storing it twice, and nothing a replica stores can be
lost between the entry, its exact key, its place in the LRU order and the log.

Keys (prefix ``joulegate:cache:``): ``e:<id>`` (hash: the entry), ``x:<ns>:<exact>`` (the
entry id for an exact key), ``lru`` (sorted set, id → last use), ``exp`` (sorted set,
id → expiry), ``ns:<ns>`` (set of the namespace's ids), ``log`` (stream: ``op`` add|del and
``id``), ``stats:<ns>`` (hash of counters). Entries expire by Redis TTL as well.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import numpy as np

from joulegate.cache.entry import Entry, vector_bytes, vector_from
from joulegate.cache.index import VectorIndex
from joulegate.cache.thresholds import EntryThreshold

log = logging.getLogger(__name__)

PREFIX = "joulegate:cache:"

# Lua: forget one entry everywhere it is kept (its hash, its exact key, its namespace, the
# LRU and expiry orders) and log the deletion; true if the entry was still there. Both
# scripts that delete define it, after setting ``prefix``, ``lru``, ``exp``, ``log`` (keys)
# and ``maxlen`` (the log's length).
_DROP_FUNCTION = """
local function drop(id)
  local f = redis.call('HMGET', prefix .. 'e:' .. id, 'namespace', 'exact_key')
  if f[1] then
    local x = prefix .. 'x:' .. f[1] .. ':' .. f[2]
    if redis.call('GET', x) == id then redis.call('DEL', x) end
    redis.call('SREM', prefix .. 'ns:' .. f[1], id)
  end
  redis.call('DEL', prefix .. 'e:' .. id)
  redis.call('ZREM', lru, id)
  redis.call('ZREM', exp, id)
  redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'op', 'del', 'id', id)
  return f[1] ~= false
end
"""

# KEYS: e:<id>, x:<ns>:<exact>, lru, exp, ns:<ns>, log
# ARGV: id, ttl_ms, now, expires, max_entries, log_maxlen, then the entry's fields as pairs.
_PUT = (
    """
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) == false then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[6], '*', 'op', 'add', 'id', ARGV[1])
local evicted = 0
local prefix = string.sub(KEYS[3], 1, -4)
local lru, exp, log, maxlen = KEYS[3], KEYS[4], KEYS[6], ARGV[6]
"""
    + _DROP_FUNCTION
    + """
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[3], 'LIMIT', 0, 64)) do
  drop(id)
end
local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[5])
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, over - 1)) do
    drop(id)
    evicted = evicted + 1
  end
end
return 1 + evicted
"""
)

# KEYS: lru, exp, log; ARGV: log_maxlen, then ids to delete.
_DROP = (
    """
local prefix = string.sub(KEYS[1], 1, -4)
local lru, exp, log, maxlen = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
"""
    + _DROP_FUNCTION
    + """
local n = 0
for i = 2, #ARGV do
  if drop(ARGV[i]) then n = n + 1 end
end
return n
"""
)

# What a replica's index needs of an entry (not its answer).
_INDEX_FIELDS = (
    *("namespace", "exact_key", "context_key", "text", "vector", "threshold"),
    *("created", "expires", "last_used"),
)


class RedisStore:
    def __init__(self, url: str, dim: int, max_entries: int, ttl_s: int) -> None:
        import redis

        self.url = url
        self.index = VectorIndex(dim)
        self.max_entries = max_entries
        self.ttl_ms = ttl_s * 1000
        self._log_maxlen = max(10_000, 2 * max_entries)
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self._put = self._redis.register_script(_PUT)
        self._drop = self._redis.register_script(_DROP)
        self._last_log_id = "0-0"
        self._sync_lock = threading.Lock()
        self._following = False  # set by open(): a store opened only to administer is not

    def _k(self, *parts: str) -> str:
        return PREFIX + ":".join(parts)

    # -- following the other replicas ---------------------------------------------------

    def open(self) -> None:
        """Read every live entry into the index, then follow the log from its end."""
        with self._sync_lock:
            self._full_sync()
            self._following = True

    def _full_sync(self) -> None:
        last = self._redis.xrevrange(self._k("log"), count=1)
        self._last_log_id = last[0][0].decode() if last else "0-0"
        for slot in self.index.slots():
            self.index.remove(slot.entry_id)
        ids = [i.decode() for i in self._redis.zrange(self._k("lru"), 0, -1)]
        for start in range(0, len(ids), 500):
            self._load(ids[start : start + 500])
        log.info("cache: %d entries loaded from %s", len(self.index), self.url)

    def _load(self, ids: list[str]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for entry_id in ids:
            pipe.hmget(self._k("e", entry_id), *_INDEX_FIELDS)
        for entry_id, fields in zip(ids, pipe.execute(), strict=True):
            if fields[0] is None:
                continue  # expired or dropped since it was logged
            ns, exact, ctx, text, vec, thr, created, expires, used = fields
            entry = Entry(
                entry_id, ns.decode(), exact.decode(), ctx.decode(),
                text.decode() if text else None, {}, {}, float(created), float(expires),
                EntryThreshold.from_dict(json.loads(thr) if thr else None), 0, float(used),
            )  # fmt: skip
            self.index.add(entry.slot(), vector_from(vec))

    def sync(self) -> None:
        """Apply what other replicas logged since the last call."""
        if not self._following or not self._sync_lock.acquire(blocking=False):
            return  # another thread is syncing right now; this lookup goes on without
        try:
            while True:
                got = self._redis.xread({self._k("log"): self._last_log_id}, count=1000)
                if not got:
                    return
                events = got[0][1]
                first = events[0][0].decode()
                if self._last_log_id != "0-0" and self._trimmed_past(first):
                    self._full_sync()  # we fell behind the log's trimmed tail
                    return
                adds: list[str] = []
                for event_id, fields in events:
                    entry_id = fields[b"id"].decode()
                    if fields[b"op"] == b"add":
                        if self.index.get(entry_id) is None:
                            adds.append(entry_id)
                    else:
                        self.index.remove(entry_id)
                        if entry_id in adds:
                            adds.remove(entry_id)
                    self._last_log_id = event_id.decode()
                if adds:
                    self._load(adds)
                if len(events) < 1000:
                    return
        finally:
            self._sync_lock.release()

    def _trimmed_past(self, first_seen: str) -> bool:
        """Whether entries between our last read and ``first_seen`` were trimmed away."""
        info = self._redis.xinfo_stream(self._k("log"))
        oldest = info.get("first-entry")
        if oldest is None:
            return False
        return _stream_id(oldest[0].decode()) > _stream_id(self._last_log_id) and (
            _stream_id(first_seen) == _stream_id(oldest[0].decode())
        )

    # -- entries ------------------------------------------------------------------------

    def fetch(self, entry_id: str) -> Entry | None:
        fields = self._redis.hgetall(self._k("e", entry_id))
        if not fields or float(fields[b"expires"]) <= time.time():
            self.index.remove(entry_id)
            return None
        f = {k.decode(): v for k, v in fields.items()}
        thr = f.get("threshold")
        return Entry(
            entry_id,
            f["namespace"].decode(),
            f["exact_key"].decode(),
            f["context_key"].decode(),
            f["text"].decode() if f.get("text") else None,
            json.loads(f["answer"]),
            json.loads(f["origin"]),
            float(f["created"]),
            float(f["expires"]),
            EntryThreshold.from_dict(json.loads(thr) if thr else None),
            int(f.get("hits", b"0")),
            float(f["last_used"]),
        )

    def put(self, entry: Entry, vector: np.ndarray | None) -> bool:
        fields: dict[str, Any] = {
            "namespace": entry.namespace,
            "exact_key": entry.exact_key,
            "context_key": entry.context_key,
            "text": entry.text or "",
            "vector": vector_bytes(vector) or b"",
            "answer": entry.answer_json(),
            "origin": entry.origin_json(),
            "threshold": json.dumps(entry.threshold.as_dict()),
            "created": repr(entry.created),
            "expires": repr(entry.expires),
            "last_used": repr(entry.created),
            "hits": 0,
        }
        flat: list[Any] = [x for kv in fields.items() for x in kv]
        ttl_ms = max(1, int((entry.expires - time.time()) * 1000))
        result = int(
            self._put(
                keys=[
                    self._k("e", entry.entry_id),
                    self._k("x", entry.namespace, entry.exact_key),
                    self._k("lru"),
                    self._k("exp"),
                    self._k("ns", entry.namespace),
                    self._k("log"),
                ],
                args=[
                    entry.entry_id,
                    ttl_ms,
                    repr(entry.created),
                    repr(entry.expires),
                    self.max_entries,
                    self._log_maxlen,
                    *flat,
                ],
            )
        )
        if result == 0:
            return False
        if result > 1:
            self.add_stats("*", {"evicted": float(result - 1)})
        self.sync()  # picks up our own entry (and any evictions) through the log
        return True

    def touch(self, entry_id: str, now: float) -> None:
        slot = self.index.get(entry_id)
        if slot is not None:
            slot.last_used = now
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(self._k("lru"), {entry_id: now}, xx=True)
        pipe.hset(self._k("e", entry_id), "last_used", repr(now))
        pipe.hincrby(self._k("e", entry_id), "hits", 1)
        pipe.execute()

    def save_threshold(self, entry_id: str, threshold: EntryThreshold) -> None:
        self.index.set_offset(entry_id, threshold.offset)
        key = self._k("e", entry_id)
        if self._redis.exists(key):
            self._redis.hset(key, "threshold", json.dumps(threshold.as_dict()))

    def _drop_ids(self, ids: list[str]) -> int:
        n = 0
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            n += int(
                self._drop(
                    keys=[self._k("lru"), self._k("exp"), self._k("log")],
                    args=[self._log_maxlen, *batch],
                )
            )
        self.sync()
        return n

    def remove_expired(self, now: float) -> int:
        ids = [i.decode() for i in self._redis.zrangebyscore(self._k("exp"), "-inf", now)]
        return self._drop_ids(ids) if ids else 0

    def clear(self, namespace: str | None = None) -> int:
        if namespace is None:
            ids = [i.decode() for i in self._redis.zrange(self._k("lru"), 0, -1)]
            stats = list(self._redis.scan_iter(self._k("stats", "*")))
        else:
            ids = [i.decode() for i in self._redis.smembers(self._k("ns", namespace))]
            stats = [self._k("stats", namespace)]
        n = self._drop_ids(ids)
        if stats:
            self._redis.delete(*stats)
        return n

    def add_stats(self, namespace: str, counters: dict[str, float]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for name, value in counters.items():
            if value:
                pipe.hincrbyfloat(self._k("stats", namespace), name, value)
        pipe.execute()

    def stats(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for key in self._redis.scan_iter(self._k("stats", "*")):
            ns = key.decode()[len(self._k("stats", "")) :]
            out[ns] = {k.decode(): float(v) for k, v in self._redis.hgetall(key).items()}
        return out

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for key in self._redis.scan_iter(self._k("ns", "*")):
            ns = key.decode()[len(self._k("ns", "")) :]
            n = int(self._redis.scard(key))
            if n:
                out[ns] = n
        return out

    def close(self) -> None:
        self._redis.close()


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)
