"""Both stores, real: a SQLite file and the local Redis server (skips locally without it,
fails under ``JOULEGATE_REQUIRE_SERVICES=1``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from joulegate.cache.entry import Entry
from joulegate.cache.service import ResponseCache, build_store
from joulegate.cache.settings import CacheSettings

ANSWER = {
    "text": "Tokyo.",
    "finish_reason": "stop",
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "reasoning_tokens": 0},
}
ORIGIN = {
    "tier": "remote",
    "model": "remote/big",
    "energy_j": 2.0,
    "cost_usd": 2.0,
    "co2e_g": 0.1,
    "energy_source": "estimated:profile",
}


class _Key:
    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self.name = key_id


def _settings(kind: str, tmp_path: Path, redis_url: str | None, **kw: Any) -> CacheSettings:
    return CacheSettings(
        embedder="hashed",
        store=kind,  # type: ignore[arg-type]
        sqlite_path=tmp_path / "cache.db",
        redis_url=redis_url or "redis://127.0.0.1:6379/0",
        **kw,
    )


@pytest.fixture(params=["sqlite", "redis"])
def make_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """``make_cache(**settings)``: a started cache on the store of the parameter (each
    call a new instance on the same store, as a restart or a second replica sees it)."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    made: list[ResponseCache] = []

    def make(**kw: Any) -> ResponseCache:
        s = _settings(request.param, tmp_path, url, **kw)
        cache = ResponseCache(s, build_store(s, tmp_path))
        cache.open()
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.store.close()


def _body(question: str, system: str = "Be brief.") -> dict[str, Any]:
    return {
        "model": "auto",
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
    }


def store(cache: ResponseCache, question: str, key: _Key | None = None) -> None:
    probe = cache.probe("auto", _body(question), key)
    assert probe is not None
    cache._store(probe, ANSWER, ORIGIN)


def served(cache: ResponseCache, question: str, key: _Key | None = None, **kw: Any) -> bool:
    probe = cache.probe("auto", _body(question), key, **kw)
    assert probe is not None
    return cache._lookup(probe) is not None


def test_entries_survive_a_restart(make_cache: Any) -> None:
    store(make_cache(), "What is the capital of Japan?")
    again = make_cache()  # a new process on the same store
    assert served(again, "What is the capital of Japan?")
    assert not served(again, "What is the capital of Peru?")


def test_an_expired_entry_is_never_served_and_is_removed(make_cache: Any) -> None:
    cache = make_cache(ttl_s=60)
    store(cache, "What is the capital of Japan?")
    [slot] = cache.store.index.slots()
    entry = cache.store.fetch(slot.entry_id)
    assert entry is not None
    # Expire it without waiting: the same entry, stored with its expiry in the past.
    cache.store.clear()
    entry.entry_id, entry.expires = Entry.new_id(), time.time() - 1
    cache.store.put(entry, None)
    assert not served(cache, "What is the capital of Japan?")
    cache.store.remove_expired(time.time())
    assert len(cache.store.index) == 0 and cache.store.counts() == {}


def test_past_max_entries_the_least_recently_used_are_evicted(make_cache: Any) -> None:
    cache = make_cache(max_entries=3)
    for q in ("one?", "two?", "three?"):
        store(cache, f"Question {q}")
    assert served(cache, "Question one?")  # now the most recently used
    store(cache, "Question four?")
    assert cache.store.counts() == {"anonymous": 3}
    assert not served(cache, "Question two?")  # the least recently used went
    assert served(cache, "Question one?") and served(cache, "Question four?")
    assert cache.stats()["total"]["evicted"] == 1


def test_key_a_entries_are_never_served_to_key_b(make_cache: Any) -> None:
    cache = make_cache()
    a, b = _Key("key-a"), _Key("key-b")
    store(cache, "What is our revenue target?", a)
    assert served(cache, "What is our revenue target?", a)
    assert not served(cache, "What is our revenue target?", b)
    assert not served(cache, "What is our revenue target?")  # nor to anonymous callers
    assert not served(make_cache(), "What is our revenue target?", b)  # nor after a restart


def test_clear_one_key_leaves_the_others(make_cache: Any) -> None:
    cache = make_cache()
    a, b = _Key("key-a"), _Key("key-b")
    store(cache, "Question?", a)
    store(cache, "Question?", b)
    assert cache.clear("key-a") == 1
    assert not served(cache, "Question?", a) and served(cache, "Question?", b)
    assert cache.store.counts() == {"key-b": 1}


def test_stats_count_lookups_hits_and_stores(make_cache: Any) -> None:
    cache = make_cache()
    store(cache, "What is the capital of Japan?")
    served(cache, "What is the capital of Japan?")
    served(cache, "What is the capital of Peru?")
    total = cache.stats()["total"]
    assert total["entries"] == 1 and total["stored"] == 1
    assert total["lookups"] == 2 and total["exact_hits"] == 1
    assert total["hit_rate"] == pytest.approx(0.5)
    assert total["est_false_hit_rate"] == 0.0  # exact hits are never wrong


def test_two_replicas_share_redis_with_no_lost_or_duplicated_entries(
    redis_url: str, tmp_path: Path
) -> None:
    s = _settings("redis", tmp_path, redis_url)
    replicas = [ResponseCache(s, build_store(s, tmp_path)) for _ in range(2)]
    for r in replicas:
        r.open()
    # Each replica stores 40 questions of its own and the same 40 shared ones, at once.
    shared = [f"Shared question {i}?" for i in range(40)]
    own = [[f"Replica {n} question {i}?" for i in range(40)] for n in range(2)]

    def work(n: int) -> None:
        for q in [x for pair in zip(own[n], shared, strict=True) for x in pair]:
            store(replicas[n], q)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert replicas[0].store.counts() == {"anonymous": 120}  # 40 + 40 + 40: none doubled
    for r in replicas:
        r.store.sync()
        assert len(r.store.index) == 120  # each replica sees every entry
        for q in [*shared, *own[0], *own[1]]:
            assert served(r, q), q  # none lost
    for r in replicas:
        r.store.close()


def test_cache_stats_and_clear_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from joulegate.cli import app

    monkeypatch.setenv("JOULEGATE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("JOULEGATE_CONFIG", raising=False)
    s = CacheSettings(embedder="hashed")
    cache = ResponseCache(s, build_store(s, tmp_path))
    cache.open()
    store(cache, "Question?", _Key("key-a"))
    store(cache, "Question?", _Key("key-b"))
    served(cache, "Question?", _Key("key-a"))
    cache.stats()  # flushes the counters
    cache.store.close()
    runner = CliRunner()
    out = runner.invoke(app, ["cache", "stats", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["total"]["entries"] == 2 and doc["total"]["exact_hits"] == 1
    assert doc["namespaces"]["key-a"]["hit_rate"] == 1.0  # its one lookup hit
    out = runner.invoke(app, ["cache", "clear", "--key", "key-a"])
    assert out.exit_code == 0 and "removed 1 entries" in out.output
    doc = json.loads(runner.invoke(app, ["cache", "stats", "--json"]).output)
    assert doc["total"]["entries"] == 1 and "key-a" not in doc["namespaces"]
