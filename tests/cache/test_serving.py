"""The cache in ``ChatService``: what is served from it, what is stored, and for whom."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from joulegate.backends.base import BackendError
from joulegate.server.errors import APIError

from ._support import QUESTION, CacheHarness, make_harness, request, streamed_text


def _info(out: Any) -> dict[str, Any]:
    return out.body["joulegate"]


def test_a_repeated_request_is_answered_from_the_cache_with_a_cache_receipt(
    harness: CacheHarness,
) -> None:
    async def scenario() -> tuple[Any, Any]:
        return await harness.ask(request()), await harness.ask(request())

    first, second = harness.run(scenario)
    assert harness.model.calls == 1  # the second answer came from the cache
    text = "Tokyo is the capital."
    assert second.body["choices"][0]["message"]["content"] == text
    assert second.body["usage"]["completion_tokens"] == 4
    info = _info(second)
    assert info["energy_source"] == "cache"
    assert info["route"]["cache"] == "exact"
    assert second.headers["x-joulegate-cache"] == "exact"
    # The baseline is what the cached answer cost when the model made it: 4 tokens at 1 J.
    assert _info(first)["energy_j"] == pytest.approx(4.0)
    assert info["baseline_energy_j"] == pytest.approx(4.0)
    assert info["baseline_cost_usd"] == pytest.approx(4.0)
    assert 0.0 <= info["energy_j"] < 0.1  # the lookup's CPU time, not a model's
    rows = harness.rows()
    assert [r["energy_source"] for r in rows] == ["estimated:profile", "cache"]
    assert rows[1]["request_id"] == second.body["id"] != first.body["id"]


def test_a_streamed_hit_is_replayed_as_chunks_with_usage(harness: CacheHarness) -> None:
    async def scenario() -> Any:
        await harness.ask(request(stream=True))  # stored from a stream, too
        return await harness.ask(request(stream=True, stream_options={"include_usage": True}))

    out = harness.run(scenario)
    events = out.body["events"]
    assert harness.model.calls == 1
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert streamed_text(events) == "Tokyo is the capital."
    finish = [e for e in events if isinstance(e, dict) and e["choices"]][-1]
    assert finish["choices"][0]["finish_reason"] == "stop"
    usage = events[-2]
    assert usage["usage"]["completion_tokens"] == 4 and usage["usage"]["prompt_tokens"] == 5
    assert usage["joulegate"]["energy_source"] == "cache"
    assert events[-1] == "[DONE]"
    assert harness.rows()[-1]["stream"] in (True, 1)


@pytest.mark.parametrize("finish", ["length"])
def test_an_answer_cut_at_max_tokens_is_not_stored(harness: CacheHarness, finish: str) -> None:
    harness.model.finish = finish

    async def scenario() -> None:
        await harness.ask(request())
        await harness.ask(request())

    harness.run(scenario)
    assert harness.model.calls == 2


def test_a_cut_answer_is_stored_when_the_deployment_asks(tmp_path: Path) -> None:
    h = make_harness(tmp_path, store_truncated=True)
    h.model.finish = "length"

    async def scenario() -> Any:
        await h.ask(request())
        return await h.ask(request())

    assert _info(h.run(scenario))["energy_source"] == "cache"


def test_a_failed_answer_is_not_stored(harness: CacheHarness) -> None:
    async def scenario() -> Any:
        harness.model.fail = BackendError("the upstream broke")
        with pytest.raises(APIError):
            await harness.ask(request())
        harness.model.fail = None
        return await harness.ask(request())

    out = harness.run(scenario)
    assert _info(out)["energy_source"] == "estimated:profile"
    assert harness.model.calls == 2


def test_a_no_store_request_is_never_stored_but_may_be_served(harness: CacheHarness) -> None:
    async def scenario() -> list[Any]:
        private = request(joulegate={"no_store": True})
        return [
            await harness.ask(private),
            await harness.ask(private),
            await harness.ask(request()),
        ]

    _, _, c = harness.run(scenario)
    assert harness.model.calls == 3  # nothing of the first two was kept
    assert _info(c)["energy_source"] == "estimated:profile"


@pytest.mark.parametrize("why", ["[cache] no_store_keys", "keys create --no-learn"])
def test_a_key_whose_traffic_must_not_be_kept_is_never_stored(tmp_path: Path, why: str) -> None:
    listed = why.startswith("[cache]")
    h = make_harness(tmp_path, no_store_keys=["private-team"] if listed else [])
    key = h.key("private-team", learn=listed)  # a key that opted out of learning opts out here

    async def scenario() -> None:
        await h.ask(request(), key)
        await h.ask(request(), key)

    h.run(scenario)
    assert h.model.calls == 2
    assert h.gw.cache is not None and h.gw.cache.store.counts() == {}


def test_a_hit_counts_against_the_keys_budget_and_is_served_at_its_limit(
    harness: CacheHarness,
) -> None:
    """A key's spend is the sum of its ledger rows, hits included; a hit costs microjoules,
    so a key at its limit still gets it, while a new question is refused."""
    key = harness.key("budgeted", budget_j=10_000.0)

    def spent() -> float:
        info = harness.keys.get(key.key_id)
        assert info is not None
        return info.spent_j

    async def scenario() -> list[Any]:
        outs = [await harness.ask(request(), key), await harness.ask(request(stream=True), key)]
        outs.append(await harness.ask(request(), key))
        return outs

    first, streamed, hit = harness.run(scenario)
    assert harness.model.calls == 1
    assert streamed_text(streamed.body["events"]) == "Tokyo is the capital."
    rows = [r for r in harness.rows() if r["key_id"] == key.key_id]
    assert [r["energy_source"] for r in rows] == ["estimated:profile", "cache", "cache"]
    assert spent() == pytest.approx(sum(r["energy_j"] for r in rows), rel=1e-9, abs=1e-12)
    assert spent() >= _info(first)["energy_j"] + _info(hit)["energy_j"]

    harness.keys.charge(key.key_id, 10_000.0, 0.0, 0.0)  # the key is now past its limit

    async def at_limit() -> Any:
        served = await harness.ask(request(), key)
        with pytest.raises(APIError) as err:
            await harness.ask(request("A question never asked before?"), key)
        assert err.value.status_code == 429
        return served

    assert _info(harness.run(at_limit))["energy_source"] == "cache"
    assert harness.model.calls == 1


def test_key_a_entry_is_never_served_to_key_b(harness: CacheHarness) -> None:
    a, b = harness.key("team-a"), harness.key("team-b")

    async def scenario() -> list[Any]:
        return [
            await harness.ask(request(), a),
            await harness.ask(request(), b),
            await harness.ask(request(), a),
        ]

    outs = harness.run(scenario)
    assert [_info(o)["energy_source"] for o in outs] == [
        "estimated:profile",
        "estimated:profile",  # key B never sees key A's entry
        "cache",
    ]


def test_a_shared_cache_serves_every_key(tmp_path: Path) -> None:
    h = make_harness(tmp_path, shared=True)
    a, b = h.key("team-a"), h.key("team-b")

    async def scenario() -> Any:
        await h.ask(request(), a)
        return await h.ask(request(), b)

    assert _info(h.run(scenario))["energy_source"] == "cache"


def test_a_request_can_turn_the_cache_off_for_itself(harness: CacheHarness) -> None:
    async def scenario() -> Any:
        await harness.ask(request())
        return await harness.ask(request(joulegate={"cache": "off"}))

    assert _info(harness.run(scenario))["energy_source"] == "estimated:profile"
    assert harness.model.calls == 2


def test_anything_that_changes_the_answer_misses(harness: CacheHarness) -> None:
    variants = [
        request(temperature=0.2),
        request(max_tokens=50),
        request(seed=7),
        request(stop=["\n"]),
        request(response_format={"type": "json_object"}),
        request(
            messages=[
                {"role": "system", "content": "Answer in French."},
                {"role": "user", "content": QUESTION},
            ]
        ),
    ]

    async def scenario() -> None:
        await harness.ask(request())
        for v in variants:
            await harness.ask(v)

    harness.run(scenario)
    assert harness.model.calls == 1 + len(variants)


def test_semantic_mode_serves_a_paraphrase_and_refuses_a_negation(tmp_path: Path) -> None:
    h = make_harness(tmp_path, embedder="minilm")
    semantic = {"cache": "semantic"}

    async def scenario() -> list[Any]:
        await h.ask(request("How do I reset my password?", joulegate=semantic))
        return [
            await h.ask(request("How can I reset my password?", joulegate=semantic)),
            await h.ask(request("How do I not reset my password?", joulegate=semantic)),
            await h.ask(request("How can I reset my password?")),  # exact mode: no
        ]

    para, negated, exact_only = h.run(scenario)
    route = _info(para)["route"]
    assert route["cache"] == "semantic" and 0.9 < route["similarity"] <= 1.0
    assert _info(para)["energy_source"] == "cache"
    assert _info(negated)["energy_source"] == "estimated:profile"
    assert _info(exact_only)["energy_source"] == "estimated:profile"


def test_semantic_mode_never_crosses_a_different_history(tmp_path: Path) -> None:
    h = make_harness(tmp_path, mode="semantic", embedder="minilm")
    h.model.echo = True

    def turn(history: str, question: str) -> Any:
        return request(
            messages=[
                {"role": "user", "content": history},
                {"role": "assistant", "content": "Noted."},
                {"role": "user", "content": question},
            ]
        )

    async def scenario() -> list[Any]:
        await h.ask(turn("I use Windows.", "How do I reset my password?"))
        return [
            await h.ask(turn("I use a Mac.", "How do I reset my password?")),
            await h.ask(turn("I use Windows.", "How can I reset my password?")),
        ]

    other_history, same_state = h.run(scenario)
    assert _info(other_history)["energy_source"] == "estimated:profile"
    assert _info(same_state)["energy_source"] == "cache"
    assert _info(same_state)["route"]["cache"] == "semantic"


@pytest.mark.parametrize("fresh_answer", ["same", "different"])
def test_an_explored_hit_is_answered_by_the_model_and_teaches_the_entry(
    tmp_path: Path, fresh_answer: str
) -> None:
    """vCache's exploration: a would-be hit goes to the model; when the fresh answer says
    something else, that entry stops being served at that score."""
    h = make_harness(tmp_path, mode="semantic", embedder="minilm", explore_rate=1.0)
    cache = h.gw.cache
    assert cache is not None
    paraphrase = request("How can I reset my password?", joulegate={"no_store": True})

    async def scenario() -> list[Any]:
        await h.ask(request("How do I reset my password?"))
        if fresh_answer == "different":
            h.model.answer = "Rome is the capital."
        explored = await h.ask(paraphrase)
        cache.settings.explore_rate = 0.0
        return [explored, await h.ask(paraphrase)]

    explored, after = h.run(scenario)
    assert _info(explored)["energy_source"] == "estimated:profile"
    assert h.model.calls == (2 if fresh_answer == "same" else 3)
    total = cache.stats()["total"]
    assert total["explored"] == 1
    if fresh_answer == "same":
        assert total["explored_disagreed"] == 0
        assert _info(after)["route"]["cache"] == "semantic"
    else:
        assert total["explored_disagreed"] == 1
        assert _info(after)["energy_source"] == "estimated:profile"  # no longer a hit


def test_a_store_that_is_down_never_fails_a_request(tmp_path: Path) -> None:
    h = make_harness(tmp_path, store="redis", redis_url="redis://127.0.0.1:1/0")  # nothing there

    async def scenario() -> list[Any]:
        return [await h.ask(request()), await h.ask(request(stream=True))]

    outs = h.run(scenario)
    assert [_info(outs[0])["energy_source"], h.model.calls] == ["estimated:profile", 2]
    assert streamed_text(outs[1].body["events"]) == "Tokyo is the capital."
