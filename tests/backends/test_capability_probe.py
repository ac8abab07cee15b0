"""``joulegate tiers --probe`` against real upstreams: what each one can do, by asking it."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from joulegate.backends.capability_probe import probe_capabilities
from joulegate.backends.settings import TierSettings
from joulegate.backends.tiers_cli import tiers

from backends.replay_upstream import start_replay
from backends.upstreams import LLAMA_MODEL_ALIAS, stop


def test_probe_finds_what_llama_cpp_python_serves(llama_server: str) -> None:
    import asyncio

    tier = TierSettings(name="llama", model=LLAMA_MODEL_ALIAS, base_url=llama_server)
    # A generous limit: llama-cpp-python computes logprobs slowly, and the machine is shared.
    found = {o.capability: o for o in asyncio.run(probe_capabilities(tier, timeout_s=240.0))}
    assert found["tools"].ok is True, found["tools"]
    assert found["logprobs"].ok is True, found["logprobs"]
    assert found["completions"].ok is True
    # llama-cpp-python 0.3's server answers 500 to a json_schema response_format and to
    # the developer role, and serves no embeddings unless started with --embedding.
    assert found["json_schema"].ok is False
    assert found["developer_role"].ok is False
    assert found["embeddings"].ok is False
    assert found["reasoning"].ok is False
    assert found["vision"].ok is not True  # never claimed from a probe


def test_tiers_probe_prints_the_capabilities_and_the_lines_to_fix_the_config(
    tmp_path: Path,
) -> None:
    replay = start_replay("reasoning")  # a reasoning upstream, not declared as one
    try:
        config = tmp_path / "joulegate.toml"
        config.write_text(
            f"""
[[tiers]]
name = "thinker"
model = "deepseek-reasoner"
base_url = "{replay.url}"
"""
        )
        app = typer.Typer()
        app.command()(tiers)
        result = CliRunner().invoke(app, ["--config", str(config), "--probe"])
    finally:
        stop(replay.proc)
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines() if line.startswith("thinker\t")]
    by_capability = {r[1]: r for r in rows if len(r) == 5}
    assert by_capability["reasoning"][2:4] == ["no", "yes"]  # declared no, probed yes
    assert "9 reasoning tokens" in by_capability["reasoning"][4]
    assert "reasoning = true" in result.stdout
