"""``ChatService`` in-process: planning, fallback, budgets and streaming.

The tiers' models are a scripted ``Backend`` (the one part that is faked: what it answers
must be known exactly to assert on it). Everything around it is real: the ledger on a
SQLite file, the key store and its budgets, the meter with the CPU power model, and the
router shipped in the package. What needs a real HTTP server or the real model is tested
by the subprocess tests beside this file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from joulegate.backends.base import (
    Backend,
    BackendError,
    BackendUnavailable,
    ChatParams,
    Finish,
    PromptTooLong,
    StreamEvent,
    TextDelta,
    Usage,
)
from joulegate.backends.settings import EmbeddedSettings, TierSettings
from joulegate.config import Settings
from joulegate.ledger import KeyInfo, KeyStore, Ledger
from joulegate.metering import CpuModelSensor, Meter
from joulegate.metering.settings import MeteringSettings
from joulegate.routing import Router
from joulegate.routing.confidence import ConfidenceModel, confidence_features
from joulegate.routing.model import TierOutcomes, fit_tier_heads
from joulegate.server.budget import BudgetGuard
from joulegate.server.errors import APIError
from joulegate.server.gateway import Gateway, Tier
from joulegate.server.planning import plan_request
from joulegate.server.protocol import ChatCompletionRequest
from joulegate.server.serving import ChatService, Outcome

from in_process import PRICED, run_started, sse_events

_T = TypeVar("_T")

EMBEDDED_DEFAULT = 8  # [embedded] default_max_tokens
REMOTE_DEFAULT = 40  # the remote tier's own default_max_tokens


class ScriptedBackend(Backend):
    """A deterministic model: answers ``w0 w1 …``, one word per token, ``words`` long or cut
    at ``max_tokens``; raises ``fail`` before its first token, or after ``fail_after``.

    Asked for log-probs, token ``i`` has ``logprobs[i % len(logprobs)]``, on its delta and in
    ``Finish``. ``sent`` counts the tokens it yielded before it finished or was stopped."""

    def __init__(self, tier: str, *, words: int = 5) -> None:
        self.tier = tier
        self.model = "scripted"
        self.words = words
        self.fail: BaseException | None = None
        self.fail_after: int | None = None
        self.seen: list[ChatParams] = []
        self.on_start: Callable[[], None] | None = None
        self.logprobs: list[float] = [-0.1]
        self.sent: list[int] = []

    async def stream(self, params: ChatParams) -> AsyncIterator[StreamEvent]:
        self.seen.append(params)
        if self.on_start is not None:
            self.on_start()
        if self.fail is not None and self.fail_after is None:
            raise self.fail
        n = min(self.words, params.max_tokens or 1_000)
        lps = [self.logprobs[i % len(self.logprobs)] for i in range(n)]
        self.sent.append(0)
        for i in range(n):
            if self.fail is not None and i == self.fail_after:
                raise self.fail
            self.sent[-1] += 1
            yield TextDelta(f"w{i} ", (lps[i],) if params.want_logprobs else None)
        finish = "stop" if n == self.words else "length"
        yield Finish(finish, Usage(3, n), tuple(lps) if params.want_logprobs else None)


@dataclass
class Harness:
    gw: Gateway
    chat: ChatService
    keys: KeyStore
    small: ScriptedBackend  # the embedded (cheap, local) tier
    remote: ScriptedBackend  # an upstream tier, priced per token

    def run(self, scenario: Callable[[], Awaitable[_T]]) -> _T:
        return run_started(self.gw, self.chat, scenario)

    def key(self, **budget: Any) -> KeyInfo:
        info, _token = self.keys.create("team", **budget)
        return info

    def spent_and_reserved_usd(self, key: KeyInfo) -> tuple[float, float]:
        now = self.keys.get(key.key_id)
        assert now is not None
        return now.spent_usd, now.reserved_usd

    def rows(self) -> list[dict[str, Any]]:
        """The ledger's rows, oldest first."""
        return list(reversed(self.gw.ledger.recent(100)))


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    tiers = [
        TierSettings(name="small", kind="embedded", model="tiny"),
        TierSettings(name="remote", model="big", default_max_tokens=REMOTE_DEFAULT, profile=PRICED),
    ]
    settings = Settings(
        data_dir=tmp_path,
        tiers=tiers,
        embedded=EmbeddedSettings(default_max_tokens=EMBEDDED_DEFAULT),
        metering=MeteringSettings(sensor="cpu-model"),
    )
    small, remote = ScriptedBackend("small"), ScriptedBackend("remote")
    meter = Meter(
        settings.metering, settings.tiers, CpuModelSensor.from_settings(settings.metering)
    )
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()  # keys are created before the gateway starts
    keys = KeyStore(ledger.engine)
    gw = Gateway(
        settings=settings,
        tiers=[Tier(tiers[0], small), Tier(tiers[1], remote)],
        meter=meter,
        ledger=ledger,
        keys=keys,
        budget=BudgetGuard(keys, meter),
    )
    return Harness(gw, ChatService(gw), keys, small, remote)


def request(model: str = "remote/big", **fields: Any) -> ChatCompletionRequest:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}
    return ChatCompletionRequest.model_validate(body)


# -- planning -----------------------------------------------------------------------------


def test_an_explicit_model_plans_its_tier_first_then_the_fallbacks(harness: Harness) -> None:
    async def scenario() -> None:
        remote = await plan_request(harness.gw, request("remote/big"))
        assert [t.name for t in remote.tiers] == ["remote", "small"]
        assert remote.route is None  # the client chose: there is no decision to report
        small = await plan_request(harness.gw, request("small"))  # the bare tier name works too
        assert [t.name for t in small.tiers] == ["small", "remote"]
        with pytest.raises(APIError) as err:
            await plan_request(harness.gw, request("nope"))
        assert err.value.status_code == 404 and err.value.code == "model_not_found"

    harness.run(scenario)


def test_auto_reports_the_routers_decision_in_the_body(harness: Harness) -> None:
    harness.gw.router = calibrated_router()
    harness.gw.settings.routing.mode = "route"

    async def scenario() -> Outcome:
        return await harness.chat.create(request("auto", joulegate={"quality_target": 0.0}))

    body = harness.run(scenario).body
    assert body is not None
    route = body["joulegate"]["route"]
    # Any tier meets a zero target, so the cheapest one is chosen.
    assert route["tier"] == body["joulegate"]["tier"] == "small"
    assert {"tier", "mode", "scores", "quality_target", "decision_ms"} <= set(route)
    assert route["mode"] == "route" and "escalated" not in route
    assert set(route["scores"]) == {"small/tiny", "remote/big"} and route["quality_target"] == 0.0


def test_a_remote_tiers_known_context_bounds_max_tokens(harness: Harness) -> None:
    """``context_length`` on an upstream tier: a max_tokens it cannot hold is a 400 naming
    the parameter and the model when the client named it, and ``auto`` plans around it."""
    harness.gw.tiers[1].settings.context_length = 4_096  # the embedded default n_ctx: 2,048

    async def scenario() -> None:
        with pytest.raises(APIError) as err:
            await plan_request(harness.gw, request("remote/big", max_tokens=5_000))
        assert err.value.status_code == 400 and err.value.param == "max_tokens"
        assert "remote/big" in err.value.message and "4096" in err.value.message
        plan = await plan_request(harness.gw, request("auto", max_tokens=3_000))
        assert [t.name for t in plan.tiers] == ["remote"]  # only it holds 3,000 tokens
        assert (await plan_request(harness.gw, request("remote/big", max_tokens=4_000))).tiers

    harness.run(scenario)


# -- answers, fallbacks and errors -----------------------------------------------------------


def test_a_json_answer_carries_its_receipt_and_is_in_the_ledger(harness: Harness) -> None:
    async def scenario() -> Outcome:
        return await harness.chat.create(request(max_tokens=3))

    out = harness.run(scenario)
    assert out.body is not None
    assert out.body["choices"][0]["message"]["content"] == "w0 w1 w2 "
    assert out.body["choices"][0]["finish_reason"] == "length"
    info = out.body["joulegate"]
    assert info["tier"] == "remote" and info["model"] == "remote/big"
    assert "route" not in info and "fallback_from" not in info
    assert out.headers["x-joulegate-tier"] == "remote"
    [row] = harness.rows()
    assert row["request_id"] == out.body["id"] == info["request_id"]
    assert row["status"] == "ok" and row["completion_tokens"] == 3
    assert row["cost_usd"] == pytest.approx(3.0)


def test_a_retryable_failure_falls_back_and_the_ledger_says_from_where(
    harness: Harness,
) -> None:
    harness.remote.fail = BackendUnavailable("tier 'remote' is unavailable")

    async def scenario() -> Outcome:
        return await harness.chat.create(request())

    body = harness.run(scenario).body
    assert body is not None
    assert body["joulegate"]["tier"] == "small"
    assert body["joulegate"]["fallback_from"] == ["remote"]
    [row] = harness.rows()  # the failed attempt did no work: one row, for the answer
    assert row["tier"] == "small" and row["fallback_from"] == "remote" and row["status"] == "ok"


def test_a_non_retryable_failure_is_the_clients_error_and_is_recorded(harness: Harness) -> None:
    harness.remote.fail = PromptTooLong("the prompt is longer than the context window")

    async def scenario() -> None:
        with pytest.raises(APIError) as err:
            await harness.chat.create(request())
        assert err.value.status_code == 400 and err.value.code == "context_length_exceeded"

    harness.run(scenario)
    assert harness.small.seen == []  # the client's own request: no other tier would take it
    [row] = harness.rows()
    assert row["status"] == "error" and row["http_status"] == 400 and row["tier"] == "remote"
    assert "context window" in row["error"]


# -- budgets ------------------------------------------------------------------------------------


def test_success_settles_the_hold_at_the_actual_cost(harness: Harness) -> None:
    key = harness.key(budget_usd=100.0)
    reserved_while_running: list[float] = []
    harness.remote.on_start = lambda: reserved_while_running.append(
        harness.spent_and_reserved_usd(key)[1]
    )

    async def scenario() -> Outcome:
        return await harness.chat.create(request(max_tokens=6), key=key)

    harness.run(scenario)
    assert reserved_while_running == [pytest.approx(6.0)]  # the worst case: 6 tokens at $1
    assert harness.spent_and_reserved_usd(key) == pytest.approx((5.0, 0.0))  # it said 5 words
    assert harness.rows()[0]["key_id"] == key.key_id


def test_failure_releases_the_hold(harness: Harness) -> None:
    key = harness.key(budget_usd=100.0)

    async def scenario() -> None:
        harness.remote.fail = PromptTooLong("too long")
        with pytest.raises(APIError):
            await harness.chat.create(request(max_tokens=6), key=key)
        # A fault that is no backend error: nothing is recorded, and the hold goes back.
        harness.remote.fail = RuntimeError("the tier crashed")
        with pytest.raises(RuntimeError):
            await harness.chat.create(request(max_tokens=6), key=key)

    harness.run(scenario)
    assert harness.spent_and_reserved_usd(key) == pytest.approx((0.0, 0.0))
    assert [r["status"] for r in harness.rows()] == ["error"]


def test_a_fallback_moves_the_hold_to_the_tier_that_answered(harness: Harness) -> None:
    key = harness.key(budget_usd=100.0)
    harness.remote.fail = BackendUnavailable("down")
    reserved_while_running: list[float] = []
    harness.small.on_start = lambda: reserved_while_running.append(
        harness.spent_and_reserved_usd(key)[1]
    )

    async def scenario() -> Outcome:
        return await harness.chat.create(request(max_tokens=6), key=key)

    body = harness.run(scenario).body
    assert body is not None and body["joulegate"]["tier"] == "small"
    # While the small tier ran, the hold was sized for it, not for the remote tier's $6.
    assert len(reserved_while_running) == 1 and 0.0 < reserved_while_running[0] < 1.0
    spent, reserved = harness.spent_and_reserved_usd(key)
    assert reserved == pytest.approx(0.0)
    assert spent == pytest.approx(body["joulegate"]["cost_usd"]) and spent < 1.0


def test_a_fallback_the_budget_cannot_cover_is_refused(harness: Harness) -> None:
    key = harness.key(budget_usd=3.0)  # covers the small tier, not 6 tokens at $1
    harness.small.fail = BackendUnavailable("down")

    async def scenario() -> None:
        with pytest.raises(APIError) as err:
            await harness.chat.create(request("small", max_tokens=6), key=key)
        assert err.value.status_code == 429 and err.value.code == "budget_exceeded"

    harness.run(scenario)
    assert harness.remote.seen == []
    assert harness.spent_and_reserved_usd(key) == pytest.approx((0.0, 0.0))


def test_an_over_budget_key_gets_429_and_nothing_runs(harness: Harness) -> None:
    key = harness.key(budget_usd=5.0)

    async def scenario() -> None:
        with pytest.raises(APIError) as err:
            await harness.chat.create(request(max_tokens=6), key=key)
        assert err.value.status_code == 429 and err.value.code == "budget_exceeded"

    harness.run(scenario)
    assert harness.remote.seen == [] and harness.rows() == []
    assert harness.spent_and_reserved_usd(key) == pytest.approx((0.0, 0.0))


def test_a_downgrading_key_moves_to_the_cheaper_tier_when_its_budget_runs_low(
    harness: Harness,
) -> None:
    key = harness.key(budget_usd=13.0, on_exceed="downgrade")
    harness.remote.words = 6

    async def scenario() -> list[dict[str, Any]]:
        bodies = []
        for _ in range(3):
            out = await harness.chat.create(request(max_tokens=6), key=key)
            assert out.body is not None
            bodies.append(out.body["joulegate"])
        return bodies

    infos = harness.run(scenario)
    assert [i["tier"] for i in infos] == ["remote", "remote", "small"]
    assert "route" not in infos[0]
    assert infos[2]["route"] == {"tier": "small", "downgraded_from": "remote"}
    assert [r["tier"] for r in harness.rows()] == ["remote", "remote", "small"]


def test_a_budget_bounds_each_tier_by_its_own_default_max_tokens(harness: Harness) -> None:
    """A request without max_tokens is bounded, for its key's budget, by the default of the
    tier it runs on, not by the embedded model's (which used to cut remote answers short)."""
    key = harness.key(budget_usd=1_000.0)
    harness.remote.words = 30  # more than the embedded default, fewer than the remote one
    reserved_while_running: list[float] = []
    harness.remote.on_start = lambda: reserved_while_running.append(
        harness.spent_and_reserved_usd(key)[1]
    )

    async def scenario() -> tuple[Outcome, Outcome, Outcome]:
        remote = await harness.chat.create(request(), key=key)
        small = await harness.chat.create(request("small"), key=key)
        unbudgeted = await harness.chat.create(request())
        return remote, small, unbudgeted

    remote, _, _ = harness.run(scenario)
    assert remote.body is not None
    assert remote.body["choices"][0]["finish_reason"] == "stop"  # all 30 words
    assert remote.body["usage"]["completion_tokens"] == 30
    assert reserved_while_running[0] == pytest.approx(REMOTE_DEFAULT)  # $1 a token it may make
    assert harness.remote.seen[0].max_tokens == REMOTE_DEFAULT
    assert harness.small.seen[0].max_tokens == EMBEDDED_DEFAULT
    # Without a budget nothing needs a bound: the tier applies its own default.
    assert harness.remote.seen[1].max_tokens is None


# -- streaming ------------------------------------------------------------------------------------


def test_a_stream_sends_role_deltas_finish_and_done_and_is_recorded(harness: Harness) -> None:
    key = harness.key(budget_usd=100.0)

    async def scenario() -> list[Any]:
        out = await harness.chat.create(request(max_tokens=3, stream=True), key=key)
        assert out.headers["x-joulegate-tier"] == "remote"
        return await sse_events(out)

    events = harness.run(scenario)
    role, *deltas, finish, done = events
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [d["choices"][0]["delta"]["content"] for d in deltas] == ["w0 ", "w1 ", "w2 "]
    assert finish["choices"][0]["finish_reason"] == "length"
    assert finish["joulegate"]["tier"] == "remote" and finish["joulegate"]["completion_tokens"] == 3
    assert done == "[DONE]"
    assert len({e["id"] for e in events[:-1]}) == 1
    [row] = harness.rows()
    assert row["stream"] and row["status"] == "ok" and row["completion_tokens"] == 3
    assert harness.spent_and_reserved_usd(key) == pytest.approx((3.0, 0.0))


def test_a_stream_that_fails_after_its_first_token_says_so_in_band(harness: Harness) -> None:
    key = harness.key(budget_usd=100.0)
    harness.remote.fail, harness.remote.fail_after = BackendError("upstream died"), 2

    async def scenario() -> list[Any]:
        return await sse_events(await harness.chat.create(request(stream=True), key=key))

    events = harness.run(scenario)
    assert events[-2]["error"]["code"] == "upstream_error" and events[-1] == "[DONE]"
    assert harness.small.seen == []  # tokens reached the client: too late to fall back
    [row] = harness.rows()
    assert row["status"] == "error" and row["completion_tokens"] == 2
    assert harness.spent_and_reserved_usd(key) == pytest.approx((2.0, 0.0))


# -- the cascade (server/cascade.py) ---------------------------------------------------------

CONFIDENT = [-0.05, -0.2, -0.1]  # every token likely
UNSURE = [-0.05, -0.2, -5.0]  # one token the model gave under 1%: a planted "wrong" sign
EASY = "What is the capital of France?"
HARD = "Prove that there are infinitely many primes, step by step."


def planted_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Answers graded acceptable exactly when no token was unlikely (high min log-prob)."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for _ in range(n):
        k = int(rng.integers(3, 40))
        lps = rng.uniform(-0.4, 0.0, k)
        ok = bool(rng.random() < 0.5)
        if not ok:
            lps[rng.integers(k)] = rng.uniform(-8.0, -3.0)
        rows.append(confidence_features(lps, "w1 " * k))
        labels.append(1.0 if ok else 0.0)
    return np.array(rows), np.array(labels)


def planted_model(shuffled: bool = False) -> ConfidenceModel:
    x, y = planted_rows(400, seed=1)
    if shuffled:  # the control: the same answers, the grades dealt at random
        y = np.random.default_rng(2).permutation(y)
    return ConfidenceModel.fit(x, y)


def calibrated_router(confidence: ConfidenceModel | None = None) -> Router:
    """A router fit for the test tiers: its head says the small tier answers capitals, not
    proofs; ``confidence`` is the small tier's confidence model, as calibration stores it."""
    prompts = [f"What is the capital of country number {i}?" for i in range(30)]
    prompts += [f"Prove theorem {i} about primes, step by step." for i in range(30)]
    scores = np.r_[np.ones(30), np.zeros(30)]
    tiers = ["small/tiny", "remote/big"]
    conf = {"small/tiny": confidence.to_dict()} if confidence is not None else None
    model = fit_tier_heads([TierOutcomes("small/tiny", prompts, scores)], tiers, confidence=conf)
    return Router(model, 0.5, tiers)


def cascading(harness: Harness, model: ConfidenceModel | None = None, **routing: Any) -> Harness:
    harness.gw.router = calibrated_router(model or planted_model())
    harness.gw.settings.routing = harness.gw.settings.routing.model_copy(
        update={"mode": "cascade", **routing}
    )
    return harness


def auto(prompt: str = EASY, target: float = 0.8, **fields: Any) -> ChatCompletionRequest:
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": prompt}],
        "joulegate": {"quality_target": target},
        **fields,
    }
    return ChatCompletionRequest.model_validate(body)


def test_the_planted_signal_is_learned_and_shuffled_grades_are_not() -> None:
    """The premise of the cascade tests below, on fresh answers from the same process: the
    gap between the P(acceptable) given to acceptable and to unacceptable answers."""
    x, y = planted_rows(300, seed=3)
    ok = y == 1.0

    def gap(model: ConfidenceModel) -> float:
        p = model.predict_proba(x)
        return float(p[ok].mean() - p[~ok].mean())

    assert gap(planted_model()) > 0.8
    assert abs(gap(planted_model(shuffled=True))) < 0.1


def test_a_cascade_keeps_a_confident_answer_on_the_cheap_tier(harness: Harness) -> None:
    cascading(harness).small.logprobs = CONFIDENT

    async def scenario() -> Outcome:
        return await harness.chat.create(auto())

    out = harness.run(scenario)
    assert out.body is not None
    info = out.body["joulegate"]
    assert info["tier"] == "small" and out.body["choices"][0]["message"]["content"] == (
        "w0 w1 w2 w3 w4 "
    )
    route = info["route"]
    assert route["mode"] == "cascade" and route["escalated"] is False
    # Kept because its P reached the threshold calibrated for the target, read from the
    # model's out-of-fold precision curve (not the target itself).
    threshold = planted_model().keep_threshold(0.8)
    assert threshold is not None and route["keep_threshold"] == pytest.approx(threshold, abs=1e-4)
    assert route["tried"] == ["small"] and route["confidence"] >= route["keep_threshold"]
    assert "discarded" not in route
    assert harness.small.seen[0].want_logprobs  # the cheap tier was asked for its log-probs
    assert harness.remote.seen == []
    [row] = harness.rows()
    assert row["tier"] == "small" and row["energy_j"] == pytest.approx(info["energy_j"])


def test_a_cascade_escalates_an_unconfident_answer_and_charges_both_attempts(
    harness: Harness,
) -> None:
    cascading(harness).small.logprobs = UNSURE
    harness.remote.words = 4

    async def scenario() -> Outcome:
        return await harness.chat.create(auto())

    out = harness.run(scenario)
    assert out.body is not None
    info = out.body["joulegate"]
    assert info["tier"] == "remote" and out.headers["x-joulegate-tier"] == "remote"
    assert out.body["choices"][0]["message"]["content"] == "w0 w1 w2 w3 "
    route = info["route"]
    assert route["escalated"] is True and route["confidence"] < route["keep_threshold"]
    assert route["tried"] == ["small", "remote"] and route["tier"] == "remote"
    discarded = route["discarded"]
    assert discarded["tier"] == "small" and discarded["completion_tokens"] == 5
    remote_j = 4 * 1.0  # what the remote answer alone costs (PRICED: 1 J per token)
    assert discarded["energy_j"] > 0.0
    assert info["energy_j"] == pytest.approx(discarded["energy_j"] + remote_j)
    assert info["cost_usd"] == pytest.approx(discarded["cost_usd"] + 4.0)
    assert float(out.headers["x-joulegate-energy-j"]) == pytest.approx(info["energy_j"], rel=1e-5)
    assert info["completion_tokens"] == 4  # the answer the client got
    [row] = harness.rows()  # one request, one row: both attempts in its figures
    assert row["tier"] == "remote" and row["status"] == "ok"
    assert row["energy_j"] == pytest.approx(info["energy_j"])
    assert row["cost_usd"] == pytest.approx(info["cost_usd"])


def test_the_shuffled_control_does_not_tell_the_two_answers_apart(harness: Harness) -> None:
    model = planted_model(shuffled=True)
    cascading(harness, model)
    # Without the signal both answers look alike: nearly the same P ...
    p_sure, p_unsure = (model.p_acceptable(lps, "w0 w1 w2 ") for lps in (CONFIDENT, UNSURE))
    assert abs(p_sure - p_unsure) < 0.1
    # ... and no threshold keeps answers 80% acceptable, so no cheap try is planned at all:
    # the receipt says why, and both requests take the router's choice alike.
    assert model.keep_threshold(0.8) is None

    async def scenario() -> list[dict[str, Any]]:
        routes = []
        for lps in (CONFIDENT, UNSURE):
            harness.small.logprobs = lps
            out = await harness.chat.create(auto())
            assert out.body is not None
            routes.append(out.body["joulegate"]["route"])
        return routes

    sure, unsure = harness.run(scenario)
    for route in (sure, unsure):
        del route["decision_ms"]  # the one field that differs: wall time
    assert sure == unsure and "escalated" not in sure
    assert sure["reason"].startswith("no cascade: no keep threshold reaches quality_target 0.8")


def test_the_request_target_sets_the_keep_threshold(harness: Harness) -> None:
    """An unconfident answer escalated at 0.8 is kept at a request's target of 0.0: every
    calibration answer is kept at threshold 0, and at least 0% of them are acceptable."""
    cascading(harness).small.logprobs = UNSURE

    async def scenario() -> tuple[Outcome, Outcome]:
        return await harness.chat.create(auto(target=0.8)), await harness.chat.create(
            auto(target=0.0)
        )

    strict, lax = harness.run(scenario)
    assert strict.body is not None and lax.body is not None
    assert strict.body["joulegate"]["route"]["escalated"] is True
    route = lax.body["joulegate"]["route"]
    assert route["escalated"] is False and route["keep_threshold"] == 0.0
    assert lax.body["joulegate"]["tier"] == "small"


def test_an_escalation_stops_the_cheap_tier_at_the_hold(harness: Harness) -> None:
    cascading(harness, cascade_hold_tokens=6).small.logprobs = UNSURE
    harness.small.words = 50

    async def scenario() -> Outcome:
        return await harness.chat.create(auto())

    info = harness.run(scenario).body["joulegate"]  # type: ignore[index]
    assert info["route"]["escalated"] and info["route"]["discarded"]["completion_tokens"] == 6
    assert harness.small.sent == [6]  # it was stopped, not left to write all 50 words


def test_a_cascade_budget_covers_both_attempts(harness: Harness) -> None:
    key = harness.key(budget_usd=100.0)
    cascading(harness).small.logprobs = UNSURE
    while_remote_ran: list[tuple[float, float]] = []
    harness.remote.on_start = lambda: while_remote_ran.append(harness.spent_and_reserved_usd(key))

    async def scenario() -> Outcome:
        return await harness.chat.create(auto(max_tokens=6), key=key)

    info = harness.run(scenario).body["joulegate"]  # type: ignore[index]
    [(spent, reserved)] = while_remote_ran
    cheap_usd = info["route"]["discarded"]["cost_usd"]
    # The cheap try is already charged, and the remote tier's worst case ($6) is held.
    assert spent == pytest.approx(cheap_usd) and reserved == pytest.approx(6.0)
    assert harness.spent_and_reserved_usd(key) == pytest.approx((info["cost_usd"], 0.0))
    assert info["cost_usd"] == pytest.approx(cheap_usd + 5.0)


def test_route_and_cascade_skips_the_cheap_try_when_the_router_gives_it_no_chance(
    harness: Harness,
) -> None:
    cascading(harness, mode="route+cascade", cascade_min_route_score=0.5)
    harness.small.logprobs = CONFIDENT

    async def scenario() -> tuple[Outcome, Outcome]:
        return await harness.chat.create(auto(HARD)), await harness.chat.create(auto(EASY))

    hard, easy = harness.run(scenario)
    assert hard.body is not None and easy.body is not None
    hard_route = hard.body["joulegate"]["route"]
    assert hard.body["joulegate"]["tier"] == "remote" and "escalated" not in hard_route
    assert hard_route["scores"]["small/tiny"] < 0.5
    assert "cascade_min_route_score" in hard_route["reason"]
    assert easy.body["joulegate"]["route"]["tried"] == ["small"]
    assert len(harness.small.seen) == 1  # only the easy prompt was tried on the small tier


def test_a_streamed_cascade_holds_the_cheap_tokens_then_streams_the_kept_answer(
    harness: Harness,
) -> None:
    cascading(harness, cascade_hold_tokens=4).small.logprobs = CONFIDENT
    harness.small.words = 10

    async def scenario() -> list[Any]:
        out = await harness.chat.create(auto(stream=True))
        assert out.headers["x-joulegate-tier"] == "small"
        # The decision came before the response: the cheap tier had produced its 4 tokens.
        assert harness.small.sent == [4]
        return await sse_events(out)

    role, *deltas, finish, done = harness.run(scenario)
    assert role["choices"][0]["delta"]["role"] == "assistant"
    # The held tokens first, then the rest live: the whole answer, in order, once.
    assert [d["choices"][0]["delta"]["content"] for d in deltas] == [f"w{i} " for i in range(10)]
    info = finish["joulegate"]
    assert info["tier"] == "small" and info["route"]["escalated"] is False
    assert info["route"]["tried"] == ["small"] and done == "[DONE]"
    assert harness.small.sent == [10]
    [row] = harness.rows()
    assert row["stream"] and row["completion_tokens"] == 10


def test_a_streamed_cascade_escalates_without_leaking_the_cheap_answer(harness: Harness) -> None:
    cascading(harness, cascade_hold_tokens=4).small.logprobs = UNSURE
    harness.small.words, harness.remote.words = 10, 3

    async def scenario() -> list[Any]:
        return await sse_events(await harness.chat.create(auto(stream=True)))

    _role, *deltas, finish, done = harness.run(scenario)
    # Only the remote tier's words reach the client; the small tier was stopped at 4.
    assert [d["choices"][0]["delta"]["content"] for d in deltas] == ["w0 ", "w1 ", "w2 "]
    assert done == "[DONE]"
    assert finish["model"] == "remote/big" and harness.small.sent == [4]
    info = finish["joulegate"]
    route = info["route"]
    assert route["escalated"] is True and route["tried"] == ["small", "remote"]
    assert info["energy_j"] == pytest.approx(route["discarded"]["energy_j"] + 3.0)
    [row] = harness.rows()
    assert row["tier"] == "remote" and row["energy_j"] == pytest.approx(info["energy_j"])


def test_a_cheap_tier_that_fails_before_deciding_escalates(harness: Harness) -> None:
    cascading(harness).small.fail = BackendUnavailable("down")

    async def scenario() -> Outcome:
        return await harness.chat.create(auto())

    info = harness.run(scenario).body["joulegate"]  # type: ignore[index]
    assert info["tier"] == "remote" and info["fallback_from"] == ["small"]
    route = info["route"]
    assert route["escalated"] is True and route["confidence"] is None
    assert route["tried"] == ["small", "remote"] and "discarded" not in route
