"""Start and stop the real upstream processes the backend tests talk to.

A plain module (not conftest) so test modules can import the handles; the fixtures that
use it are in ``conftest.py``. Also usable by gateway-level tests:
``start_fault_server("500")`` returns a :class:`FaultServer` on a free loopback port.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
FAULT_SCRIPT = HERE / "fault_upstream.py"
# The name llama-cpp-python's server gives the embedded GGUF (--model_alias).
LLAMA_MODEL_ALIAS = "gemma-3-270m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before serving")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout_s}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_llama_server(*flags: str) -> Iterator[str]:
    """``python -m llama_cpp.server`` serving the embedded GGUF on a free loopback port, as
    its URL, until the block ends; ``flags`` are more of the server's options. The tests'
    fixture and ``traces/record.py`` start it this one way, so the recorded traces come from
    the server the tests meet."""
    from joulegate.backends.model_files import ensure_embedded_model

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(ensure_embedded_model()),
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
            *flags,
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


@dataclass
class FaultServer:
    """Handle on one ``fault_upstream.py`` process."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, **change: str) -> None:
        httpx.post(f"{self.url}/_fault", json=change, timeout=5).raise_for_status()

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = httpx.get(f"{self.url}/_fault", timeout=5).json()
        return state

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def start_fault_server(mode: str = "ok", port: int | None = None) -> FaultServer:
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, str(FAULT_SCRIPT), "--port", str(port), "--mode", mode],
    )
    server = FaultServer(proc, port)
    wait_http(f"{server.url}/_fault", proc, 20)
    return server


def open_connections_to(port: int) -> int:
    """Established client-side TCP connections to ``port`` on this machine (from /proc)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[3] == "01":  # 01: ESTABLISHED
            count += 1
    return count
