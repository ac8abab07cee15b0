"""Real upstream processes on loopback: llama-cpp-python's OpenAI server and a fault server.

They live here rather than in ``tests/conftest.py`` because only the backend tests (and
the gateway tests that import these fixtures) need them; both are plain subprocesses
speaking HTTP, so what the backend meets is exactly what it meets in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from joulegate._platform import vcpu_count
from joulegate.backends import EmbeddedSettings
from joulegate.backends.embedded import EmbeddedBackend

from backends.upstreams import (
    FaultServer,
    running_llama_server,
    start_fault_server,
    stop,
)


@pytest.fixture(scope="session")
def embedded_backend() -> Iterator[EmbeddedBackend]:
    """The real embedded model, loaded once for the tests that ask it directly."""
    backend = EmbeddedBackend(
        "embedded", "gemma-3-270m", EmbeddedSettings(n_ctx=1024, n_threads=min(2, vcpu_count()))
    )
    asyncio.run(backend.start())
    try:
        yield backend
    finally:
        asyncio.run(backend.aclose())


@pytest.fixture(scope="module")
def fault_server() -> Iterator[FaultServer]:
    """One fault server per module; each test sets the mode it needs (reset to ``ok``)."""
    server = start_fault_server()
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture
def fault(fault_server: FaultServer) -> FaultServer:
    if fault_server.proc.poll() is not None:
        pytest.fail("the shared fault server died; tests that kill it must use their own")
    fault_server.set(mode="ok", health="ok")
    return fault_server


@pytest.fixture
def fault_factory() -> Iterator[Callable[..., FaultServer]]:
    """Fault servers of a test's own, for modes that end the process (``die``)."""
    started: list[FaultServer] = []

    def make(mode: str = "ok") -> FaultServer:
        server = start_fault_server(mode)
        started.append(server)
        return server

    yield make
    for server in started:
        stop(server.proc)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """``python -m llama_cpp.server`` serving the embedded GGUF: a real second model server."""
    with running_llama_server("--n_threads", str(min(2, vcpu_count()))) as url:
        yield url
