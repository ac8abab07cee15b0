"""The ``joulegate`` command as a user runs it: a real subprocess, the real model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "joulegate.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
    )


def test_models_lists_auto_and_the_embedded_tier() -> None:
    out = _run("models")
    assert out.returncode == 0, out.stderr
    assert "auto" in out.stdout and "embedded/gemma-3-270m" in out.stdout


def test_chat_answers_in_the_terminal_with_tier_and_receipt(tmp_path: Path) -> None:
    out = _run(
        "chat",
        "What is the capital of France?",
        "--max-tokens",
        "16",
        env={"JOULEGATE_DATA_DIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "embedded/gemma-3-270m" in out.stdout
    for field in ("latency_ms", "energy_j", "modeled:cpu", "wall_s"):
        assert field in out.stdout
    assert (tmp_path / "ledger.db").exists()  # the answer was metered and kept


def test_unknown_model_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    out = _run("chat", "hi", "--model", "nope", env={"JOULEGATE_DATA_DIR": str(tmp_path)})
    assert out.returncode == 1
    assert "model_not_found" in out.stdout


def test_missing_config_file_is_a_usage_error() -> None:
    out = _run("models", "--config", "/nonexistent/joulegate.toml")
    assert out.returncode == 2
