"""Settings come from defaults, a TOML file and JOULEGATE_* variables, in that precedence."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from joulegate.config import load_settings

TOML = """
[server]
port = 9001

[[tiers]]
name = "embedded"
kind = "embedded"
model = "gemma-3-270m"

[[tiers]]
name = "big"
kind = "openai"
model = "llama-3.1-70b"
base_url = "http://127.0.0.1:8081"
"""


def test_defaults_serve_the_embedded_tier_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOULEGATE_CONFIG", raising=False)
    s = load_settings()
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8000)
    assert [t.public_id for t in s.tiers] == ["embedded/gemma-3-270m"]


def test_toml_file_then_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "jg.toml"
    cfg.write_text(TOML)
    s = load_settings(cfg)
    assert s.server.port == 9001
    assert [t.public_id for t in s.tiers] == ["embedded/gemma-3-270m", "big/llama-3.1-70b"]
    monkeypatch.setenv("JOULEGATE_SERVER__PORT", "9002")
    monkeypatch.setenv("JOULEGATE_CONFIG", str(cfg))
    assert load_settings().server.port == 9002


def test_bad_config_is_rejected_with_the_field_named(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[tiers]]\nname = "a/b"\n')
    with pytest.raises(ValidationError, match="tier name"):
        load_settings(cfg)
    cfg.write_text('[[tiers]]\nname = "x"\n[[tiers]]\nname = "x"\n')
    with pytest.raises(ValidationError, match="unique"):
        load_settings(cfg)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.toml")


def test_example_config_in_repo_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "joulegate.example.toml"
    s = load_settings(example)
    assert s.tiers[0].kind == "embedded"
