"""Start real ``joulegate serve`` processes on free loopback ports for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    ledger_url: str
    config_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_gateway(
    workdir: Path,
    config_toml: str | None = None,
    env: dict[str, str] | None = None,
    ledger_url: str | None = None,
    port: int | None = None,
    wait_s: float = 180,
) -> GatewayProcess:
    """Launch ``python -m joulegate.cli serve`` and wait until /health answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    data_dir = workdir / "data"
    full_env = {**os.environ, "JOULEGATE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    full_env.pop("JOULEGATE_CONFIG", None)
    # The response cache would answer a test's repeated request itself; tests of the cache
    # turn it on (``env={"JOULEGATE_CACHE__MODE": ...}``).
    full_env.setdefault("JOULEGATE_CACHE__MODE", "off")
    if ledger_url:
        full_env["JOULEGATE_LEDGER__URL"] = ledger_url
    full_env.update(env or {})
    args = [
        sys.executable,
        "-m",
        "joulegate.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    config_path = None
    if config_toml is not None:
        config_path = workdir / "joulegate.toml"
        config_path.write_text(config_toml)
        args += ["--config", str(config_path)]
    log_path = workdir / f"gateway-{port}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    gw = GatewayProcess(
        proc,
        port,
        data_dir,
        log_path,
        ledger_url or f"sqlite:///{data_dir / 'ledger.db'}",
        config_path,
        full_env,
    )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}:\n{gw.log()[-4000:]}")
        try:
            if httpx.get(f"{gw.base_url}/health", timeout=2).status_code in (200, 503):
                return gw
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    gw.stop()
    raise RuntimeError(f"gateway did not become healthy in {wait_s}s:\n{gw.log()[-4000:]}")


# -- tier configs the gateway tests share ---------------------------------------------------

EMBEDDED_TIER = """
[[tiers]]
name = "embedded"
kind = "embedded"
model = "gemma-3-270m"
"""


def openai_tier(name: str, model: str, base_url: str, **options: object) -> str:
    """A ``[[tiers]]`` TOML block for an OpenAI-compatible upstream; nested ``profile``
    options come as a dict."""
    profile = options.pop("profile", None)
    lines = [
        "[[tiers]]",
        f'name = "{name}"',
        'kind = "openai"',
        f'model = "{model}"',
        f'base_url = "{base_url}"',
    ]
    lines += [f"{k} = {_toml(v)}" for k, v in options.items()]
    if isinstance(profile, dict):
        lines.append("[tiers.profile]")
        lines += [f"{k} = {_toml(v)}" for k, v in profile.items()]
    return "\n" + "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)
