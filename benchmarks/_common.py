"""Shared pieces of the benchmarks: processes on loopback, the load generator, tables, JSON.

Every benchmark starts what it measures as real processes on free loopback ports (never
in-process), pins them to CPUs when the machine has more than one, and writes its
results with the machine's description to ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
# Work dirs, logs and ledgers of the processes a benchmark starts (git-ignored).
OUT = HERE / "out"

# Progress lines appear as they happen even when the output goes to a file.
with contextlib.suppress(AttributeError, ValueError):
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
# Wide tables stay readable when the output is a file or a pipe, not a terminal.
console = Console(width=None if sys.stdout.isatty() else 140)

CHAT_PATH = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark."}]
# Sent to every target: LiteLLM's master key (joulegate on loopback and the upstream ignore it).
AUTH = {"authorization": "Bearer sk-bench-0123456789abcdef0123456789abcdef"}


# -- machine --------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def _git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip() or None
    return None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on; the load average matters on a shared machine."""
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "mem_gib": _mem_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "load_average_1_5_15": load_average(),
        "command": " ".join(["python", "-m", _module_name(), *sys.argv[1:]]),
    }


def _module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None else Path(sys.argv[0]).stem


def cpu_layout() -> tuple[set[int], set[int]]:
    """(gateway CPUs, load-generator + upstream CPUs): half each, the gateway never shares.

    On one CPU there is nothing to split and everything shares it.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(cpus), set(cpus)
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


# -- results ----------------------------------------------------------------------------


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    console.print(f"[dim]wrote {path.relative_to(REPO)}[/]")
    return path


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(_fmt(v) for v in row))
    console.print(table)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3f}"
    return str(v)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; ``p`` in [0, 100]."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))
    return s[k]


# -- processes --------------------------------------------------------------------------


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


def start_upstream(workdir: Path, cpus: set[int] | None = None) -> Proc:
    port = free_port()
    args = [sys.executable, "-m", "benchmarks.instant_upstream", "--port", str(port)]
    env = {"PYTHONPATH": str(REPO)}
    return spawn("upstream", args, port, workdir=workdir, cpus=cpus, env=env)


def joulegate_config(upstream_url: str | None, *, log_level: str = "warning") -> str:
    """A config with one ``openai`` tier at the instant upstream (or the default embedded)."""
    text = f'[server]\nlog_level = "{log_level}"\n'
    if upstream_url is not None:
        text += (
            '\n[[tiers]]\nname = "upstream"\nkind = "openai"\nmodel = "bench-model"\n'
            f'base_url = "{upstream_url}"\n'
        )
    return text


def start_joulegate(
    workdir: Path,
    upstream_url: str | None,
    cpus: set[int] | None = None,
    *,
    extra_toml: str = "",
    env: dict[str, str] | None = None,
) -> Proc:
    """``joulegate serve`` with its SQLite ledger (WAL) in ``workdir/data``: the ledger is on.

    The ledger starts empty: rows from an earlier run would skew its size and counts.
    """
    shutil.rmtree(workdir / "data", ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "joulegate.toml"
    config.write_text(joulegate_config(upstream_url) + extra_toml)
    port = free_port()
    args = [sys.executable, "-m", "joulegate.cli", "serve"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
    full_env = {"JOULEGATE_DATA_DIR": str(workdir / "data"), **(env or {})}
    full_env.setdefault("JOULEGATE_CONFIG", str(config))
    p = spawn("joulegate", args, port, workdir=workdir, cpus=cpus, env=full_env)
    p.extra["ledger"] = str(workdir / "data" / "ledger.db")
    return p


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for p in reversed(procs):
            p.stop()


# -- load generator ---------------------------------------------------------------------


@dataclass
class LoadResult:
    """One closed-loop run: ``concurrency`` clients, each sending as soon as it is answered."""

    target: str
    stream: bool
    concurrency: int
    elapsed_s: float
    latencies_ms: list[float]
    ttft_ms: list[float]
    errors: int
    first_error: str | None = None
    # CPU seconds the serving process used during the run (set by the caller): a measure
    # of work per request that waiting for a busy CPU does not inflate, unlike latency.
    server_cpu_s: float | None = None

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "stream": self.stream,
            "concurrency": self.concurrency,
            "requests": self.ok,
            "errors": self.errors,
            "first_error": self.first_error,
            "elapsed_s": round(self.elapsed_s, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p(50), 3),
            "p95_ms": round(self.p(95), 3),
            "p99_ms": round(self.p(99), 3),
            "mean_ms": round(sum(self.latencies_ms) / max(1, self.ok), 3),
            "ttft_p50_ms": round(percentile(self.ttft_ms, 50), 3) if self.ttft_ms else None,
            "server_cpu_ms_per_request": round(self.server_cpu_s * 1000 / self.ok, 3)
            if self.server_cpu_s is not None and self.ok
            else None,
        }


def chat_body(model: str, stream: bool, max_tokens: int = 16) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": MESSAGES, "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


async def _one(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], stream: bool
) -> tuple[float, float | None]:
    """One request, read to its last byte; (latency ms, time-to-first-byte ms)."""
    t0 = time.perf_counter()
    if not stream:
        resp = await client.post(url, json=body)
        if resp.status_code != 200:
            raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:300]}")
        return (time.perf_counter() - t0) * 1000, None
    ttfb: float | None = None
    tail = b""
    async with client.stream("POST", url, json=body) as resp:
        if resp.status_code != 200:
            await resp.aread()
            raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:300]}")
        async for chunk in resp.aiter_raw():
            if ttfb is None:
                ttfb = (time.perf_counter() - t0) * 1000
            tail = (tail + chunk)[-64:]
    if b"[DONE]" not in tail:
        raise RuntimeError(f"stream ended without [DONE]: {tail!r}")
    return (time.perf_counter() - t0) * 1000, ttfb


async def run_load(
    target: str,
    base_url: str,
    model: str,
    *,
    stream: bool,
    concurrency: int,
    duration_s: float,
    max_requests: int | None = None,
    warmup: int = 2,
) -> LoadResult:
    """Closed loop for ``duration_s`` (or ``max_requests``), after ``warmup`` rounds per client."""
    url = base_url + CHAT_PATH
    body = chat_body(model, stream)
    latencies: list[float] = []
    ttfts: list[float] = []
    errors = 0
    first_error: str | None = None
    sent = 0
    # One client (one keep-alive connection) per simulated user: a single shared httpx
    # pool gets slow with many connections and would make the load generator the bottleneck.
    clients = [
        httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=60, headers=AUTH)
        for _ in range(concurrency)
    ]
    try:
        # Warm-up: open every connection and let both ends settle; not counted.
        for _ in range(warmup):
            await asyncio.gather(
                *(_one(c, url, body, stream) for c in clients), return_exceptions=True
            )
        deadline = time.perf_counter() + duration_s

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal errors, first_error, sent
            while time.perf_counter() < deadline:
                if max_requests is not None and sent >= max_requests:
                    return
                sent += 1
                try:
                    ms, ttfb = await _one(client, url, body, stream)
                except Exception as exc:
                    errors += 1
                    first_error = first_error or f"{type(exc).__name__}: {exc}"[:300]
                    continue
                latencies.append(ms)
                if ttfb is not None:
                    ttfts.append(ttfb)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        elapsed = time.perf_counter() - t0
    finally:
        for c in clients:
            await c.aclose()
    return LoadResult(target, stream, concurrency, elapsed, latencies, ttfts, errors, first_error)


def load(**kwargs: Any) -> LoadResult:
    """``run_load`` on a fresh event loop (uvloop when installed, as the servers use)."""
    try:
        import uvloop

        return uvloop.run(run_load(**kwargs))
    except ImportError:
        return asyncio.run(run_load(**kwargs))


def pin_self(cpus: set[int]) -> None:
    """Pin this (load-generator) process; a no-op where affinity cannot be set."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, cpus)
