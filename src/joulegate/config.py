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
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from joulegate.backends.settings import EmbeddedSettings, TierSettings
from joulegate.cache.settings import CacheSettings
from joulegate.ledger.settings import LedgerSettings
from joulegate.metering.settings import MeteringSettings
from joulegate.routing.settings import RoutingSettings
from joulegate.server.settings import ServerSettings

__all__ = ["Settings", "default_data_dir", "load_settings"]


def default_data_dir() -> Path:
    """Where the ledger and the assembled model live: the user's data dir, not the repo."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "joulegate"


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
    cache: CacheSettings = Field(default_factory=CacheSettings)

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
