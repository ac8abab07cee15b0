"""Routing settings, composed into the global settings object as ``routing``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

# The share of the answers a cheaper tier keeps that should be acceptable. The cascade keeps
# a cheap answer when its confidence reaches the threshold at which, in calibration (out of
# fold), >= 95% of kept answers were acceptable: the issue-12 bar for kept answers. The router
# uses the same number: with an uncalibrated top tier (the reference, p = 1) a cheaper tier
# gets a prompt when its own measured head predicts an acceptable answer with P >= 0.95
# (docs/routing.md; benchmarks/README.md, "Cascade", has 0.85 and 0.9 for comparison).
DEFAULT_QUALITY_TARGET = 0.95

# How ``auto`` uses the tiers (README.md, "Routing"): "route" asks the prompt router
# once; "cascade" lets the cheapest tier with a confidence model answer first and keeps its
# answer only when that model predicts it acceptable; "route+cascade" does the cascade only
# for prompts the router gives the cheap tier a chance on.
RoutingMode = Literal["route", "cascade", "route+cascade"]
# route+cascade measured best (benchmarks/README.md, "Cascade"): it keeps what the cascade
# keeps and skips the cheap try where the router gives it no chance (all of GSM8K).
DEFAULT_MODE: RoutingMode = "route+cascade"
# The cheap tier's tokens a streamed cascade holds back before deciding; the shipped
# confidence model reads the same number (``ConfidenceModel.first_n``).
DEFAULT_CASCADE_HOLD_TOKENS = 48
# On the probe set (k-fold, at target 0.85, where most folds have a keep threshold)
# route+cascade keeps as many answers at 0.5 as at 0.0 while trying the cheap tier on 28% of
# the routine prompts instead of 80%: each failed try costs its energy and delays the answer
# (benchmarks/README.md, "Cascade").
DEFAULT_CASCADE_MIN_ROUTE_SCORE = 0.5

__all__ = [
    "DEFAULT_CASCADE_HOLD_TOKENS",
    "DEFAULT_CASCADE_MIN_ROUTE_SCORE",
    "DEFAULT_MODE",
    "DEFAULT_QUALITY_TARGET",
    "LearnSettings",
    "RoutingMode",
    "RoutingSettings",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 7 * 86_400}


def parse_duration(value: str | float) -> float:
    """Seconds in ``value``: a number of seconds, or ``90s``, ``30m``, ``6h``, ``30d``, ``2w``."""
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(value)
    if m is None:
        raise ValueError(f"cannot read the duration {value!r}: use e.g. 3600, 30m, 6h, 30d or 2w")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


class LearnSettings(BaseModel):
    """``[routing.learn]``: learning from live traffic (docs/routing.md, "Learning from traffic").

    A sampled ``auto`` request that a cheaper tier answered is asked of the strongest tier
    too, after the answer has been sent, and the strongest tier judges whether the cheap
    answer was as good (``routing/judge.py``); a sampled escalated request is answered by a
    cheaper tier as well, so the escalation side is measured too. Each verdict becomes an
    outcome (``purpose = "shadow"``) that the router is refit on.

    Off by default: shadowing sends a prompt to a tier its client did not ask for (a local
    prompt to a hosted API, say), which is the operator's decision to make, key by key
    (``joulegate keys create --no-learn``).
    """

    enabled: bool = Field(default=False, description="Shadow-sample live traffic.")
    sample_rate: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="Share of eligible (auto-routed, learnable) answers that are shadowed.",
    )
    # Hard daily caps (UTC days) on what shadow calls spend, judge calls included: once a
    # day's shadow spend in the ledger reaches either, no more shadowing until the next day.
    # 20 kJ is about 10 hosted-model answers of ~1,000 tokens at the remote defaults, or
    # hours of the embedded tier; USD 0.50 about 50 such answers at gpt-4o list prices.
    max_energy_j_per_day: float = Field(default=20_000.0, ge=0.0)
    max_cost_usd_per_day: float = Field(default=0.50, ge=0.0)
    store_prompts: bool = Field(
        default=False,
        description=(
            "Keep the prompt text of shadowed requests in the outcomes table. Off: only the "
            "prompt's SHA-256 and its router features (hashed word counts and a few length "
            "statistics) are kept, which is all a refit needs."
        ),
    )
    refit_every: float | None = Field(
        default=None,
        description=(
            "Seconds (or 30m, 6h, 1d) between the server's refit checks; None: never refit "
            "in the server (`joulegate router train --from-ledger` refits by hand)."
        ),
    )
    min_new_outcomes: int = Field(
        default=200,
        ge=1,
        description="A refit check fits a new router only once this many outcomes are new.",
    )
    max_tokens: int = Field(
        default=256,
        ge=1,
        description="The most tokens a shadow answer may have (the request's own bound if lower).",
    )

    @field_validator("refit_every", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        if v is None or v == "" or v == 0:
            return None
        if isinstance(v, str | int | float):
            seconds = parse_duration(v)
            if seconds <= 0:
                raise ValueError("refit_every must be positive (or left out)")
            return seconds
        return v


class RoutingSettings(BaseModel):
    """Where the router comes from and how demanding it is by default."""

    router_path: Path | None = Field(
        default=None,
        description=(
            "Router file from `joulegate calibrate` (fit on the configured tiers); None loads "
            "the shipped router, which knows only the embedded tier."
        ),
    )
    quality_target: float = Field(
        default=DEFAULT_QUALITY_TARGET,
        ge=0.0,
        le=1.0,
        description=(
            "Default quality target. Cascade: the share of the cheap answers it keeps that "
            "should be acceptable; an answer is kept when its confidence reaches the "
            "threshold at which that share was met in calibration (out of fold), and no "
            "cheap try is made when no threshold meets it. Router: a cheaper tier is used "
            "when its predicted probability of answering acceptably is at least this "
            "fraction of the best tier's (the most expensive tier, if uncalibrated, counts "
            "as 1, making this an absolute bar). 1.0 escalates unless a cheaper tier is "
            "predicted as good as the best; 0.0 always uses the cheapest tier. Requests "
            'override it with extra_body={"joulegate": {"quality_target": x}}.'
        ),
    )
    mode: RoutingMode = Field(
        default=DEFAULT_MODE,
        description=(
            '"route": the prompt router picks the tier. "cascade": the cheapest tier that has '
            "a confidence model answers first, and its answer is kept only when the model's "
            "P(acceptable) reaches the keep threshold calibrated for quality_target; "
            'otherwise the next tier answers. "route+cascade": the cascade, but only for '
            "prompts whose router score on the cheap tier is >= cascade_min_route_score; "
            "the others go straight to the router's choice. benchmarks/README.md has the "
            "measurements behind the default."
        ),
    )
    cascade_hold_tokens: int = Field(
        default=DEFAULT_CASCADE_HOLD_TOKENS,
        ge=1,
        description=(
            "A streamed cascade holds at most this many of the cheap tier's tokens before it "
            "decides (a shorter answer is held to its end); the held text reaches the client "
            "only if the answer is kept. Match it to the confidence model's first_n (48)."
        ),
    )
    cascade_min_route_score: float = Field(
        default=DEFAULT_CASCADE_MIN_ROUTE_SCORE,
        ge=0.0,
        le=1.0,
        description=(
            "route+cascade only: the router's predicted P(acceptable) on the cheap tier "
            "at which the cheap tier is still tried first."
        ),
    )
    learn: LearnSettings = Field(
        default_factory=LearnSettings,
        description="[routing.learn]: shadow sampling of live traffic and periodic refits.",
    )
