"""Drive a ``Gateway`` and its ``ChatService`` in this process, as the server would.

Shared by the tests that run the pipeline without HTTP (``server/test_serving.py``, the
cache's ``cache/_support.py``), so that they start, drain and stop the gateway, and read a
streamed answer, the one way the server's lifespan and its clients do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from joulegate.metering.settings import TierProfile
from joulegate.server.gateway import Gateway
from joulegate.server.serving import ChatService, Outcome

_T = TypeVar("_T")

# A tier that costs exactly 1 J and $1 per generated token and nothing per prompt token, so
# a budget's and a cached answer's arithmetic is exact: a request for 6 tokens reserves $6.
PRICED = TierProfile(
    joules_per_input_token=0.0,
    joules_per_output_token=1.0,
    usd_per_mtok_input=0.0,
    usd_per_mtok_output=1_000_000.0,
)


def run_started(gw: Gateway, chat: ChatService, scenario: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``scenario`` against a started gateway, then drain the service's background work
    (ledger writes, cache stores) and stop, as the server's lifespan would."""

    async def main() -> _T:
        await gw.start()
        try:
            return await scenario()
        finally:
            await chat.drain()
            await gw.stop()

    return asyncio.run(main())


async def sse_events(outcome: Outcome) -> list[Any]:
    """The ``data:`` payloads of a streamed answer, parsed (``[DONE]`` kept as a string)."""
    assert outcome.stream is not None and outcome.body is None
    events: list[Any] = []
    async for chunk in outcome.stream:
        for line in chunk.decode().splitlines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append(data if data == "[DONE]" else json.loads(data))
    return events
