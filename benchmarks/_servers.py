"""The two servers most benchmarks measure: ``joulegate serve`` and the instant upstream.

The instant upstream (``instant_upstream.py``) answers in microseconds, so it is the zero
line; joulegate runs with its SQLite ledger on, as users run it. LiteLLM, the comparison,
is started by ``_litellm.py``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from benchmarks._output import REPO
from benchmarks._procs import Proc, free_port, spawn


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
    # The response cache off: a benchmark repeats its requests, and measures the model path.
    full_env = {
        "JOULEGATE_DATA_DIR": str(workdir / "data"),
        "JOULEGATE_CACHE__MODE": "off",
        **(env or {}),
    }
    full_env.setdefault("JOULEGATE_CONFIG", str(config))
    p = spawn("joulegate", args, port, workdir=workdir, cpus=cpus, env=full_env)
    p.extra["ledger"] = str(workdir / "data" / "ledger.db")
    return p
