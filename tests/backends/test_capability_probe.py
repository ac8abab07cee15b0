"""``joulegate tiers --probe`` against real upstreams: what each one can do, by asking it."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from joulegate.backends.capability_probe import probe_capabilities, probe_context_length
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


def test_the_context_window_is_read_from_the_model_card_where_the_server_states_it(
    llama_server: str, tmp_path: Path
) -> None:
    """A vLLM-style card says ``max_model_len`` (the fault upstream writes one, as vLLM
    does: vLLM itself needs a GPU); llama-cpp-python's card says nothing."""
    import asyncio

    from backends.upstreams import start_fault_server

    fault = start_fault_server("ok")
    try:
        vllm_like = TierSettings(name="big", model="fault-model", base_url=fault.url)
        assert asyncio.run(probe_context_length(vllm_like)) == (4096, "/v1/models max_model_len")
        other = TierSettings(name="big", model="another", base_url=fault.url)
        assert asyncio.run(probe_context_length(other))[0] is None
        llama = TierSettings(name="llama", model=LLAMA_MODEL_ALIAS, base_url=llama_server)
        assert asyncio.run(probe_context_length(llama)) == (None, "/v1/models does not state it")

        config = tmp_path / "joulegate.toml"
        config.write_text(
            f'[[tiers]]\nname = "big"\nmodel = "fault-model"\nbase_url = "{fault.url}"\n'
        )
        app = typer.Typer()
        app.command()(tiers)
        result = CliRunner().invoke(app, ["--config", str(config), "--probe"])
    finally:
        fault.kill()
    assert result.exit_code == 0, result.output
    row = next(r.split("\t") for r in result.stdout.splitlines() if "\tcontext_length\t" in r)
    assert row[2:4] == ["-", "4096"]
    assert "tier big: set context_length = 4096 (/v1/models max_model_len)" in result.stdout
