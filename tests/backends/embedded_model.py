"""Asking the real embedded model directly, as the backend tests that measure it do."""

from __future__ import annotations

import asyncio
from typing import Any

from joulegate.backends import ChatParams, Finish, TextDelta
from joulegate.backends.embedded import EmbeddedBackend


def collect(backend: EmbeddedBackend, params: ChatParams) -> tuple[list[TextDelta], Finish]:
    """Every text delta of one answer, and its ``Finish``."""

    async def run() -> tuple[list[TextDelta], Finish]:
        deltas: list[TextDelta] = []
        finish: Finish | None = None
        async for event in backend.stream(params):
            if isinstance(event, TextDelta):
                deltas.append(event)
            elif isinstance(event, Finish):
                finish = event
        assert finish is not None
        return deltas, finish

    return asyncio.run(run())


def ask(backend: EmbeddedBackend, prompt: str, **params: Any) -> tuple[str, Finish]:
    """One greedy, seeded answer to ``prompt``: its text and its ``Finish``."""
    chat = ChatParams(
        messages=[{"role": "user", "content": prompt}], temperature=0.0, seed=1, **params
    )
    deltas, finish = collect(backend, chat)
    return "".join(d.text for d in deltas), finish
