"""Shadow sampling: learn from live traffic after the answer has gone, within daily caps.

``ChatService.after_answer`` hands every settled client answer to :meth:`ShadowSampler.offer`,
which returns at once: it only decides whether to sample the request and queues it. One
background task works the queue, one request at a time, so shadow work never delays or
changes an answer already given, and adds at most one request's worth of load at a time:

- a sampled request that a **cheaper tier** answered is asked of the **strongest tier** too,
  and the strongest tier judges the client's answer against its own (``routing/judge.py``,
  both orders): the outcome counts towards *quality retained* (``served`` true);
- a sampled request the **strongest tier** answered (routed or escalated there) is answered
  by a **cheaper tier** in the shadow and judged the same way (``served`` false), so the
  escalation side is measured too.

Every shadow call goes through the pipeline with ``purpose = "shadow"``: metered, a ledger
row of its own (with a zero baseline: it is learning overhead, ``ledger/learning.py``), never
on the client's receipt or key budget. The day's shadow spend in the ledger is checked
against ``max_energy_j_per_day`` and ``max_cost_usd_per_day`` before each sample; once
either is reached shadowing stops until the next UTC day.

Only ``auto`` requests are sampled (a request that names its model chose its tier, perhaps
to keep a prompt local), and never those of a key created with ``--no-learn``. Outcomes keep
the prompt's SHA-256 and router features, not its text, unless ``store_prompts = true``.

With ``refit_every`` set, a second task refits the router from the ledger's calibration and
shadow outcomes once ``min_new_outcomes`` are new, and swaps it in only if its
cross-validated quality at the quality target is no worse (``routing/learning.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from joulegate.ledger import OutcomeStore
from joulegate.ledger.learning import LEARNING_PURPOSES, SHADOW, shadow_spend_by_day
from joulegate.routing.answers import Answer, AskFailed
from joulegate.routing.judge import Judge
from joulegate.routing.settings import LearnSettings
from joulegate.server.asker import GatewayAsker
from joulegate.server.completions_protocol import TextCompletionRequest
from joulegate.server.gateway import Gateway
from joulegate.server.planning import router_prompt
from joulegate.server.serving import Answered, ChatService

if TYPE_CHECKING:  # numpy and scikit-learn are loaded with the router, not before
    from joulegate.routing.learning import RefitDecision

__all__ = ["ShadowMetrics", "ShadowSampler", "router_file"]

log = logging.getLogger(__name__)

# Samples waiting for the worker; beyond this a sample is dropped (and counted), so a burst
# of traffic never builds a backlog of shadow work.
QUEUE_SIZE = 64
# Requests whose answer is not free text for the judge to compare (tool calls, forced JSON):
# not sampled.
_NOT_JUDGED = ("tools", "functions", "response_format")


class ShadowMetrics:
    """``/metrics``: what shadow sampling did, and the verdicts behind quality retained."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.samples = Counter(
            "joulegate_shadow_samples",
            "Answers offered to shadow sampling, by what became of them (sampled, judged, "
            "capped, opted_out, dropped, failed).",
            ["result"],
            registry=registry,
        )
        self.verdicts = Counter(
            "joulegate_shadow_verdicts",
            "Cheaper tiers' answers judged against the strongest tier's, by tier, whether the "
            "client got that answer (served) and the verdict (as_good, worse, undecided). "
            "Quality retained = as_good / all, over served=true.",
            ["tier", "served", "verdict"],
            registry=registry,
        )


_metrics: ShadowMetrics | None = None
_metrics_lock = threading.Lock()


def default_metrics() -> ShadowMetrics:
    """The process-wide collectors on the default registry (created once)."""
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            _metrics = ShadowMetrics()
        return _metrics


def _judgeable(done: Answered) -> bool:
    """A chat answer in plain text: what the judge compares (not a text completion, tool
    calls or schema-bound JSON, nor an empty answer)."""
    if isinstance(done.request, TextCompletionRequest) or not done.text.strip():
        return False
    extra = done.request.passthrough()
    return not any(extra.get(k) for k in _NOT_JUDGED)


def router_file(gw: Gateway) -> Path:
    """Where a refit writes the router: ``[routing] router_path``, else ``<data_dir>/router.npz``
    (as ``joulegate calibrate``)."""
    path = gw.settings.routing.router_path
    return Path(path).expanduser() if path is not None else gw.settings.data_dir / "router.npz"


@dataclass
class _Day:
    """Whether shadowing is stopped for a UTC day, and why."""

    day: date
    reason: str


class ShadowSampler:
    """Samples answered requests and judges them in the background; see the module doc."""

    def __init__(
        self,
        gw: Gateway,
        service: ChatService,
        settings: LearnSettings | None = None,
        *,
        seed: int | None = None,
        metrics: ShadowMetrics | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.gw = gw
        self.settings = settings or gw.settings.routing.learn
        self.asker = GatewayAsker(service, purpose=SHADOW)
        self.store = OutcomeStore(gw.ledger.engine)
        self.metrics = metrics or default_metrics()
        self.counts: dict[str, int] = {}
        self.last_refit: RefitDecision | None = None
        self._rng = random.Random(seed)
        self._today = today or (lambda: datetime.now(UTC).date())
        self._queue: asyncio.Queue[Answered] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped: _Day | None = None
        self._fitted_at = 0  # outcomes in the table at the last refit

    @property
    def enabled(self) -> bool:
        return self.settings.enabled and len(self.gw.tiers) > 1

    # -- sampling (on the request path: must return at once) --------------------------------

    def offer(self, done: Answered) -> None:
        """Decide whether to shadow ``done`` and queue it; never blocks, never raises."""
        if not self.enabled or self._queue is None:
            return
        if done.route is None or done.route.decision is None:
            return  # the client named its tier, or there was nothing to choose
        if not _judgeable(done):
            return
        if not done.learn:
            self._count("opted_out")
            return
        if self._stopped is not None and self._stopped.day == self._today():
            self._count("capped")
            return
        if self._rng.random() >= self.settings.sample_rate:
            return
        try:
            self._queue.put_nowait(done)
        except asyncio.QueueFull:
            self._count("dropped")
            return
        self._count("sampled")

    def _count(self, result: str) -> None:
        self.counts[result] = self.counts.get(result, 0) + 1
        self.metrics.samples.labels(result).inc()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker (and the refit loop, when ``refit_every`` is set)."""
        if not self.enabled or self._tasks:
            return
        self._queue = asyncio.Queue(QUEUE_SIZE)
        self._fitted_at = await asyncio.to_thread(self._learning_outcomes)
        self._tasks.append(asyncio.create_task(self._work(), name="joulegate-shadow"))
        if self.settings.refit_every:
            self._tasks.append(asyncio.create_task(self._refits(), name="joulegate-refit"))
        log.info(
            "shadow sampling on: %.1f%% of auto answers, caps %.0f J and $%.2f a day%s",
            100 * self.settings.sample_rate,
            self.settings.max_energy_j_per_day,
            self.settings.max_cost_usd_per_day,
            f", refit every {self.settings.refit_every:.0f} s" if self.settings.refit_every else "",
        )

    async def drain(self) -> None:
        """Wait until every queued sample has been judged (tests; a graceful stop)."""
        if self._queue is not None:
            await self._queue.join()

    async def stop(self) -> None:
        """Stop the tasks; a sample being judged is abandoned (its calls are in the ledger)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # -- the worker --------------------------------------------------------------------------

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            done = await self._queue.get()
            try:
                await self._shadow(done)
            except AskFailed as exc:
                self._count("failed")
                log.warning("shadow sample of %s: no answer (%s)", done.request_id, exc)
            except Exception:
                self._count("failed")
                log.exception("shadow sample of %s failed", done.request_id)
            finally:
                self._queue.task_done()

    async def _over_cap(self) -> bool:
        """Whether today's shadow spend has reached a cap (read from the ledger)."""
        today = self._today()
        if self._stopped is not None and self._stopped.day == today:
            return True
        start = datetime(today.year, today.month, today.day, tzinfo=UTC)
        spent = await asyncio.to_thread(shadow_spend_by_day, self.gw.ledger.engine, start)
        energy, cost = spent.get(today, (0.0, 0.0))
        s = self.settings
        reason = None
        if energy >= s.max_energy_j_per_day:
            reason = f"{energy:.4g} J of the {s.max_energy_j_per_day:g} J daily cap"
        elif cost >= s.max_cost_usd_per_day:
            reason = f"${cost:.4g} of the ${s.max_cost_usd_per_day:g} daily cap"
        if reason is None:
            return False
        self._stopped = _Day(today, reason)
        log.warning("shadow sampling stopped for %s: %s spent", today.isoformat(), reason)
        return True

    async def _shadow(self, done: Answered) -> None:
        if await self._over_cap():
            self._count("capped")
            return
        tiers = [t.public_id for t in self.gw.tiers]
        strongest = tiers[-1]
        req = done.request
        prompt = router_prompt(req)
        messages = req.messages_as_dicts()
        bound = req.token_limit()
        max_tokens = min(bound, self.settings.max_tokens) if bound else self.settings.max_tokens
        if done.tier != strongest:  # a cheaper tier answered the client: ask the strongest
            cheap = Answer(
                tier=done.tier,
                text=done.text,
                finish_reason=done.finish_reason,
                completion_tokens=done.completion_tokens,
                energy_j=done.receipt.energy_j,
                energy_source=done.receipt.energy_source,
                request_id=done.request_id,
                logprobs=done.logprobs,
            )
            asked = await self.asker.messages(strongest, messages, max_tokens=max_tokens)
            reference = asked.text
            served = True
        else:  # the strongest answered: have a cheaper tier answer in the shadow
            tier = self._rng.choice(tiers[:-1])
            cheap = await self.asker.messages(tier, messages, max_tokens=max_tokens, logprobs=True)
            reference = done.text
            served = False
        verdict = await Judge(self.asker, strongest).score(prompt, cheap.text, reference)
        from joulegate.routing.learning import shadow_record

        decision = done.route.decision if done.route is not None else None
        router = self.gw.router
        assert router is not None  # two tiers or more: the gateway loaded one
        record = shadow_record(
            prompt,
            cheap,
            verdict.score,
            served=served,
            request_id=done.request_id,
            spec=router.model.featurizer.spec,
            store_prompt=self.settings.store_prompts,
            extra={
                "router_score": decision.scores.get(cheap.tier) if decision else None,
                "escalated": done.escalated,
                "answered_by": done.tier,
                "judge": list(verdict.orders),
            },
        )
        await asyncio.to_thread(self.store.add, [record])
        self._count("judged")
        label = {1.0: "as_good", 0.0: "worse"}.get(verdict.score, "undecided")
        self.metrics.verdicts.labels(cheap.tier, "true" if served else "false", label).inc()

    # -- refits ------------------------------------------------------------------------------

    def _learning_outcomes(self) -> int:
        return sum(self.store.count(p) for p in LEARNING_PURPOSES)

    async def _refits(self) -> None:
        every = float(self.settings.refit_every or 0)
        while True:
            await asyncio.sleep(every)
            try:
                await self.refit_once()
            except Exception:
                log.exception("router refit failed; the current router keeps serving")

    async def refit_once(self, *, force: bool = False) -> RefitDecision | None:
        """Refit if ``min_new_outcomes`` are new (or ``force``); swap the router in if the
        swap rule allows. Returns the decision, or None when there was nothing to do."""
        router = self.gw.router
        if router is None:
            return None
        total = await asyncio.to_thread(self._learning_outcomes)
        if not force and total - self._fitted_at < self.settings.min_new_outcomes:
            return None
        tiers = [t.public_id for t in self.gw.tiers]
        target = self.gw.settings.routing.quality_target
        from joulegate.routing.learning import refit, save_keeping_previous

        def fit() -> RefitDecision:
            outcomes = [o for p in LEARNING_PURPOSES for o in self.store.load(p, tiers)]
            return refit(outcomes, tiers, router.model, target)

        decision = await asyncio.to_thread(fit)
        self._fitted_at = total
        self.last_refit = decision
        # Warning level: a refit decides what serves traffic, so it is always shown.
        if not decision.swap:
            log.warning("router %s", decision.describe())
            return decision
        from joulegate.routing import Router

        path = router_file(self.gw)
        previous = await asyncio.to_thread(save_keeping_previous, decision.fit.router, path)
        self.gw.router = Router(decision.fit.router, target, tiers, source=str(path))
        log.warning(
            "router %s; written to %s%s%s",
            decision.describe(),
            path,
            f" (previous kept as {previous})" if previous else "",
            ""
            if self.gw.settings.routing.router_path is not None
            else f'; set [routing] router_path = "{path}" to keep it across restarts',
        )
        return decision

    def status(self) -> dict[str, Any]:
        """What the sampler has done since start (for logs and tests)."""
        stopped = self._stopped
        return {
            "enabled": self.enabled,
            "counts": dict(self.counts),
            "stopped": None
            if stopped is None
            else {"day": stopped.day.isoformat(), "reason": stopped.reason},
        }
