"""Servers a benchmark starts as real processes on loopback, and what they use.

Each runs in its own session, pinned to the CPUs it is given, with its output in a log file;
``spawn`` returns once its health path answers, and ``Proc.stop`` ends it and its workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` plus its children (uvicorn/gunicorn workers)."""
    total_kib = 0
    for p in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
    return total_kib / 1024


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            for c in text:
                out += [int(c), *_children(int(c))]
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children so far (from /proc)."""
    total = 0
    for p in [pid, *_children(pid)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


@dataclass
class Proc:
    """A server the benchmark started; ``stop`` ends it and everything it spawned."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_mib(self) -> float:
        return rss_mib(self.proc.pid)

    def cpu_s(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is not None:
            return
        # Started in its own session: the signal reaches its workers too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def spawn(
    name: str,
    args: Sequence[str],
    port: int,
    *,
    workdir: Path,
    cpus: set[int] | None = None,
    env: dict[str, str] | None = None,
    health_path: str = "/health",
    wait_s: float = 180,
) -> Proc:
    """Start ``args`` (pinned to ``cpus``) and wait until ``health_path`` answers 200."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}

    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=workdir,
            preexec_fn=pin,
            start_new_session=True,
        )
    p = Proc(name, proc, port, log_path)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{p.log()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(p.base_url + health_path, timeout=2).status_code == 200:
                return p
        time.sleep(0.2)
    p.stop()
    raise RuntimeError(f"{name} did not become healthy in {wait_s}s:\n{p.log()[-4000:]}")


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for p in reversed(procs):
            p.stop()
