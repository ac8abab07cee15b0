"""Connection pools for one upstream tier, sharded.

httpcore checks every pooled connection on each request (O(connections)), so under load
one large pool spends its time in that check. Several small pools keep it short: a request
takes the first pool with a free connection, so one request at a time reuses one
connection, and concurrency spreads over as few pools as it needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

SHARDS = 8


class ShardedPool:
    """``SHARDS`` httpx clients sharing ``max_connections`` between them."""

    def __init__(self, base_url: str, timeout: httpx.Timeout, max_connections: int) -> None:
        self.per_shard = -(-max_connections // SHARDS)
        limits = httpx.Limits(
            max_connections=self.per_shard, max_keepalive_connections=self.per_shard
        )
        self._clients = [
            httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits)
            for _ in range(SHARDS)
        ]
        self._in_flight = [0] * SHARDS

    @property
    def any(self) -> httpx.AsyncClient:
        """A client for requests that are not answers (health probes)."""
        return self._clients[0]

    def _pick(self) -> int:
        for i, n in enumerate(self._in_flight):
            if n < self.per_shard:
                return i
        return min(range(SHARDS), key=self._in_flight.__getitem__)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        """The least-filled client, counted as busy until the block ends."""
        i = self._pick()
        self._in_flight[i] += 1
        try:
            yield self._clients[i]
        finally:
            self._in_flight[i] -= 1

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
