"""The parts a running gateway holds, built from settings and started/stopped together.

Kept apart from HTTP so the CLI (``joulegate chat``) and tests drive the same pipeline as
the server does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from joulegate.backends import build_backend
from joulegate.backends.base import Backend
from joulegate.backends.settings import TierSettings
from joulegate.cache import ResponseCache
from joulegate.config import Settings
from joulegate.ledger import KeyStore, Ledger
from joulegate.metering import Meter, select_sensor
from joulegate.server.budget import BudgetGuard

if TYPE_CHECKING:
    from joulegate.routing import Router

log = logging.getLogger(__name__)


@dataclass
class Tier:
    settings: TierSettings
    backend: Backend

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def public_id(self) -> str:
        return self.settings.public_id


@dataclass
class Gateway:
    settings: Settings
    tiers: list[Tier]
    meter: Meter
    ledger: Ledger
    keys: KeyStore
    budget: BudgetGuard
    router: Router | None = None
    cache: ResponseCache | None = None  # [cache]; None: off

    @classmethod
    def from_settings(cls, settings: Settings) -> Gateway:
        tiers = [Tier(t, build_backend(t, settings.embedded)) for t in settings.tiers]
        meter = Meter(settings.metering, settings.tiers, select_sensor(settings.metering))
        ledger = Ledger.from_settings(settings.ledger, settings.data_dir)
        keys = KeyStore(ledger.engine)
        router = None
        if len(tiers) > 1:  # one tier needs no decision, and no numpy at start-up
            from joulegate.routing import Router

            router = Router.load(
                settings.routing.router_path,
                settings.routing.quality_target,
                tiers=[t.public_id for t in tiers],  # warns now if the file does not fit them
            )
        return cls(
            settings=settings,
            tiers=tiers,
            meter=meter,
            ledger=ledger,
            keys=keys,
            budget=BudgetGuard(keys, meter),
            router=router,
            cache=ResponseCache.from_settings(settings.cache, settings.data_dir),
        )

    def tier(self, name: str) -> Tier:
        for t in self.tiers:
            if t.name == name:
                return t
        raise KeyError(name)

    def find_model(self, model: str) -> Tier | None:
        """A tier by its public id (``embedded/gemma-3-270m``) or its bare name."""
        for t in self.tiers:
            if model in (t.public_id, t.name):
                return t
        return None

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.ledger.start()
        if self.cache is not None:
            await self.cache.start()
        for t in self.tiers:
            await t.backend.start()
        log.info(
            "joulegate ready: tiers=%s sensor=%s",
            [t.public_id for t in self.tiers],
            self.meter.sensor.name,
        )

    async def stop(self) -> None:
        for t in self.tiers:
            try:
                await t.backend.aclose()
            except Exception:
                log.exception("closing tier %s", t.name)
        if self.cache is not None:  # waits for answers still being stored
            await self.cache.close()
        # Last: every receipt written by the requests above is flushed here.
        await self.ledger.close()
