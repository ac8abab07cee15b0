"""The ``joulegate`` command as a user runs it: a real subprocess, the real model."""

from __future__ import annotations

import os
import re
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
    out = _run("models")  # piped: one tab-separated row per model id
    assert out.returncode == 0, out.stderr
    ids = [line.split("\t")[0] for line in out.stdout.splitlines()[1:]]
    assert ids == ["auto", "embedded/gemma-3-270m"]


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
    for field in ("energy_j", "modeled:cpu", "wall_s"):
        assert field in out.stdout
    # Figures a person reads: a tenth of a millisecond, four significant digits of joules.
    assert re.search(r"^\s*latency_ms\s+\d+\.\d[ \t]*$", out.stdout, re.MULTILINE), out.stdout
    energy = re.search(r"^\s*energy_j\s+(\S+)[ \t]*$", out.stdout, re.MULTILINE)
    assert energy is not None and len(energy.group(1).replace(".", "")) <= 4, out.stdout
    assert out.stderr == ""  # llama.cpp's load notices go to logging, not the terminal
    assert (tmp_path / "ledger.db").exists()  # the answer was metered and kept


def test_unknown_model_is_refused_before_any_model_loads(tmp_path: Path) -> None:
    config = tmp_path / "joulegate.toml"
    # A model that cannot load: had the CLI loaded it first, the error would be about it.
    config.write_text('[embedded]\nmodel_path = "/nonexistent/model.gguf"\n')
    out = _run(
        "chat",
        "hi",
        "--model",
        "nope",
        "-c",
        str(config),
        env={"JOULEGATE_DATA_DIR": str(tmp_path)},
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "model_not_found" in out.stdout and "embedded/gemma-3-270m" in out.stdout
    assert "nonexistent" not in out.stdout + out.stderr


def test_missing_config_file_is_a_usage_error() -> None:
    out = _run("models", "--config", "/nonexistent/joulegate.toml")
    assert out.returncode == 2
