"""The LiteLLM proxy as the comparison gateway: its own venv, config and process.

LiteLLM is installed from PyPI (``litellm[proxy]``) into ``benchmarks/.venv-litellm`` the
first time a benchmark needs it, never into joulegate's venv: its pins would fight ours.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks._load import AUTH
from benchmarks._output import HERE, console
from benchmarks._procs import Proc, free_port, spawn

VENV = HERE / ".venv-litellm"
LITELLM = VENV / "bin" / "litellm"
CALLBACK = HERE / "litellm_sqlite_ledger.py"
SPEC = "litellm[proxy]"
# LiteLLM refuses to start without a master key (production behaviour); the load generator
# sends it to every target (joulegate on loopback and the upstream ignore it).
MASTER_KEY = AUTH["authorization"].removeprefix("Bearer ")


def installed() -> bool:
    return LITELLM.exists()


def version() -> str | None:
    if not installed():
        return None
    out = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import importlib.metadata as m;"
         "print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


def ensure_installed() -> None:
    """Create the venv and ``pip install 'litellm[proxy]'`` unless it is already there."""
    if installed():
        return
    console.print(f"[bold]installing {SPEC} into {VENV.relative_to(HERE.parent)}[/] (once)")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, SPEC], check=True)


def config_yaml(upstream_url: str) -> str:
    # ``openai/<model>`` with ``api_base``: LiteLLM's documented way to reach any
    # OpenAI-compatible server.
    return f"""\
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: {upstream_url}/v1
      api_key: sk-bench
      # A price, so LiteLLM computes each request's cost as joulegate's receipt does.
      input_cost_per_token: 0.0000005
      output_cost_per_token: 0.0000015
litellm_settings:
  callbacks: litellm_sqlite_ledger.ledger
  set_verbose: false
  json_logs: true
general_settings:
  master_key: {MASTER_KEY}
"""


def start_litellm(workdir: Path, upstream_url: str, cpus: set[int] | None = None) -> Proc:
    """One uvicorn worker (``--num_workers 1``), like joulegate's one process."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yaml"
    config.write_text(config_yaml(upstream_url))
    shutil.copy(CALLBACK, workdir / CALLBACK.name)
    for old in workdir.glob("litellm-ledger.db*"):  # start with an empty ledger
        old.unlink()
    port = free_port()
    args = [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--num_workers", "1"]
    env = {
        # Offline: use the cost map shipped in the wheel instead of fetching it from GitHub.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_MODE": "PRODUCTION",
        "BENCH_LITELLM_LEDGER": str(workdir / "litellm-ledger.db"),
        "PYTHONPATH": str(workdir),
    }
    p = spawn(
        "litellm", args, port, workdir=workdir, cpus=cpus, env=env,
        health_path="/health/liveliness", wait_s=240,
    )
    p.extra["ledger"] = str(workdir / "litellm-ledger.db")
    return p
