"""Real upstream processes on loopback: llama-cpp-python's OpenAI server and a fault server.

They live here rather than in ``tests/conftest.py`` because only the backend tests (and
the gateway tests that import these fixtures) need them; both are plain subprocesses
speaking HTTP, so what the backend meets is exactly what it meets in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from backends.upstreams import (
    LLAMA_MODEL_ALIAS,
    FaultServer,
    free_port,
    start_fault_server,
    stop,
    wait_http,
)


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
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    from joulegate.backends.model_files import ensure_embedded_model

    model = ensure_embedded_model()
    port = free_port()
    threads = str(max(1, min(2, len(os.sched_getaffinity(0)))))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            LLAMA_MODEL_ALIAS,
            # The GGUF's template is not recognised by llama-cpp-python 0.3; without this
            # it falls back to llama-2 framing and Gemma answers with an empty string.
            "--chat_format",
            "gemma",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "1024",
            "--n_threads",
            threads,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/v1/models", proc, 90)
        yield url
    finally:
        stop(proc)
