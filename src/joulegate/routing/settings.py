"""Routing settings, composed into the global settings object as ``routing``."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

# Keeps the weak tier when it is predicted at least 85% as likely to answer well as the best
# tier; on the RouteLLM data that escalates about 40% of MMLU and 80% of GSM8K prompts.
DEFAULT_QUALITY_TARGET = 0.85

__all__ = ["DEFAULT_QUALITY_TARGET", "RoutingSettings"]


class RoutingSettings(BaseModel):
    """Where the router comes from and how demanding it is by default."""

    router_path: Path | None = Field(
        default=None,
        description="Router file from `joulegate router train`; None loads the shipped default.",
    )
    quality_target: float = Field(
        default=DEFAULT_QUALITY_TARGET,
        ge=0.0,
        le=1.0,
        description=(
            "Default relative quality target: a cheaper tier is used when its predicted "
            "probability of answering acceptably is at least this fraction of the best tier's. "
            "1.0 escalates unless a cheaper tier is predicted as good as the best; 0.0 always "
            "uses the cheapest tier. Requests override it with "
            'extra_body={"joulegate": {"quality_target": x}}.'
        ),
    )
